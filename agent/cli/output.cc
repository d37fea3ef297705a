#include "agent/cli/output.h"

#include <fmt/format.h>

namespace vigil::cli {

std::string short_time(const std::string& rfc3339) {
  return rfc3339.size() >= 26 ? rfc3339.substr(11, 15) : rfc3339;
}

std::string endpoint_str(const nlohmann::json& e) {
  std::string addr = e.value("addr", "?");
  if (addr.find(':') != std::string::npos) addr = "[" + addr + "]";
  return fmt::format("{}:{}", addr, e.value("port", 0));
}

std::string terminal_safe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(s[++i]));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void make_terminal_safe(nlohmann::json& j) {
  if (j.is_string()) {
    j = terminal_safe(j.get_ref<const std::string&>());
  } else if (j.is_array()) {
    for (auto& v : j) make_terminal_safe(v);
  } else if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto& [k, v] : j.items()) {
      make_terminal_safe(v);
      out[terminal_safe(k)] = std::move(v);
    }
    j = std::move(out);
  }
}

std::string human_line(const nlohmann::json& e) {
  std::string kind = e.value("kind", "?");
  std::string who = "-";
  if (e.contains("process")) {
    const auto& p = e["process"];
    who = fmt::format("{}/{}", p.value("pid", 0), p.value("comm", "?"));
  }
  std::string what;
  if (kind == "connection") {
    const auto& c = e["conn"];
    what = fmt::format("{:<5} {} {:<6} {} -> {}", e.value("state", "?"), c.value("proto", "?"),
                       c.value("role", "?"), endpoint_str(c["local"]), endpoint_str(c["remote"]));
    if (e.contains("bytes_sent"))
      what += fmt::format(" sent={} recv={}", e.value("bytes_sent", 0), e.value("bytes_recv", 0));
    if (e.contains("process")) what += fmt::format(" exe={}", e["process"].value("exe", ""));
  } else if (kind == "api_call") {
    const auto& req = e["request"];
    std::string target = req.value("path", "");
    if (req.contains("query")) target += "?" + req["query"].get<std::string>();
    what = fmt::format("{:<6} {} {} {}{} -> {} ({:.2f} ms, {}/{} B{})", e.value("role", "?"),
                       e.value("protocol", "?"), req.value("method", "?"), req.value("host", ""),
                       target, e["response"].value("status", 0),
                       e.value("latency_ns", 0) / 1e6, e.value("req_bytes", 0),
                       e.value("resp_bytes", 0), e.value("truncated", false) ? ", truncated" : "");
    if (e.value("tls", false)) what += fmt::format(" tls={}", e.value("tls_lib", "?"));
    if (e.contains("grpc"))
      what += fmt::format(" grpc={}/{} status={}", e["grpc"].value("service", ""), e["grpc"].value("method", ""),
                          e["grpc"].value("status", -1));
  } else if (kind == "egress") {
    const auto& d = e["dst"];
    what = fmt::format("{:<10} {} {}{} policy {} ({}){}", e.value("verdict", "?"), e.value("proto", "?"),
                       endpoint_str(d), d.contains("fqdn") ? " (" + d["fqdn"].get<std::string>() + ")" : "",
                       e.value("policy", "?"), e.value("mode", "?"),
                       e.value("rule", "").empty() ? "" : " rule " + e.value("rule", ""));
    if (e.contains("process")) what += fmt::format(" exe={}", e["process"].value("exe", ""));
  } else if (kind == "policy") {
    const auto& p = e["policy"];
    what = fmt::format("{} {}{}", p.value("action", "?"), p.value("name", "?"),
                       p.contains("error") ? ": " + p["error"].get<std::string>() : "");
  } else if (kind == "lost") {
    what = fmt::format("{} events from {}", e["lost"].value("count", 0), e["lost"].value("source", "?"));
  } else {
    nlohmann::json rest = e;
    for (const char* k : {"v", "time", "node", "kind", "seq", "process"}) rest.erase(k);
    what = rest.dump();
  }
  return terminal_safe(fmt::format("{} {:<11} {:<22} {}", short_time(e.value("time", "")), kind, who, what));
}

}  // namespace vigil::cli
