#include "agent/cli/top_table.h"

#include <algorithm>

#include <fmt/format.h>

#include "agent/cli/output.h"

namespace vigil::cli {
namespace {

std::string ms(uint64_t ns) { return ns ? fmt::format("{:.2f}", ns / 1e6) : "-"; }

// A non-negative integer field of `j`, else 0 (a malformed event is counted, not trusted).
uint64_t uint_at(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return 0;
  return it->get<uint64_t>();
}

std::string str_at(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

void TopTable::Row::add(uint16_t status, uint64_t latency_ns) {
  ++requests;
  if (status >= 500) ++server_errors;
  else if (status >= 400) ++client_errors;
  if (latency_ns == 0) return;
  ++seen;
  if (latencies_ns.size() < kSamples) {
    latencies_ns.push_back(latency_ns);
  } else {
    // Reservoir sampling: each call of the interval is in the sample with the same chance.
    uint64_t x = seen * 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    if (uint64_t at = x % seen; at < kSamples) latencies_ns[at] = latency_ns;
  }
}

std::pair<uint64_t, uint64_t> TopTable::Row::p50_p95() const {
  if (latencies_ns.empty()) return {0, 0};
  std::vector<uint64_t> v = latencies_ns;
  auto at = [&](double q) {
    size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return v[k];
  };
  uint64_t p95 = at(0.95);
  return {at(0.5), p95};
}

void TopTable::add(const nlohmann::json& e) {
  if (str_at(e, "kind") != "api_call") return;
  ++calls_;
  const auto& req = e.contains("request") && e["request"].is_object() ? e["request"] : nlohmann::json::object();
  const auto& resp = e.contains("response") && e["response"].is_object() ? e["response"] : nlohmann::json::object();
  const auto& proc = e.contains("process") && e["process"].is_object() ? e["process"] : nlohmann::json::object();
  auto status = static_cast<uint16_t>(std::min<uint64_t>(uint_at(resp, "status"), 999));
  uint64_t latency = uint_at(e, "latency_ns");
  auto pid = static_cast<uint32_t>(uint_at(proc, "pid"));
  std::string endpoint = str_at(e, "endpoint");
  if (endpoint.empty()) endpoint = str_at(req, "path");
  processes_[{pid, str_at(proc, "comm")}].add(status, latency);
  endpoints_[{str_at(e, "role"), str_at(req, "method"), str_at(req, "host"), endpoint}].add(status, latency);
}

void TopTable::clear() {
  processes_.clear();
  endpoints_.clear();
  calls_ = 0;
}

template <typename Map>
std::vector<typename Map::const_iterator> TopTable::busiest(const Map& m, size_t rows) {
  std::vector<typename Map::const_iterator> out;
  for (auto it = m.begin(); it != m.end(); ++it) out.push_back(it);
  std::stable_sort(out.begin(), out.end(), [](auto a, auto b) { return a->second.requests > b->second.requests; });
  if (out.size() > rows) out.resize(rows);
  return out;
}

std::string TopTable::render(double seconds, size_t rows) const {
  double s = seconds > 0 ? seconds : 1;
  std::string out = fmt::format("{} API calls in {:.1f} s ({:.1f}/s), {} processes, {} endpoints\n\n", calls_, seconds,
                                calls_ / s, processes_.size(), endpoints_.size());
  out += fmt::format("{:>8} {:<16} {:>9} {:>6} {:>6} {:>9} {:>9}\n", "PID", "COMM", "REQ/S", "4XX", "5XX", "P50 MS",
                     "P95 MS");
  for (auto it : busiest(processes_, rows)) {
    const Row& r = it->second;
    auto [p50, p95] = r.p50_p95();
    out += fmt::format("{:>8} {:<16} {:>9.1f} {:>6} {:>6} {:>9} {:>9}\n", std::get<0>(it->first),
                       terminal_safe(std::get<1>(it->first).substr(0, 16)), r.requests / s, r.client_errors, r.server_errors,
                       ms(p50), ms(p95));
  }
  out += fmt::format("\n{:<6} {:<7} {:<40} {:>9} {:>6} {:>6} {:>9} {:>9}\n", "ROLE", "METHOD", "ENDPOINT", "REQ/S", "4XX",
                     "5XX", "P50 MS", "P95 MS");
  for (auto it : busiest(endpoints_, rows)) {
    const Row& r = it->second;
    const auto& [role, method, host, endpoint] = it->first;
    std::string where = terminal_safe(host.empty() ? endpoint : host + endpoint);
    if (where.size() > 40) where = where.substr(0, 39) + "…";
    auto [p50, p95] = r.p50_p95();
    out += fmt::format("{:<6} {:<7} {:<40} {:>9.1f} {:>6} {:>6} {:>9} {:>9}\n", terminal_safe(role), terminal_safe(method.substr(0, 7)), where,
                       r.requests / s, r.client_errors, r.server_errors, ms(p50), ms(p95));
  }
  return out;
}

nlohmann::json TopTable::to_json(double seconds, size_t rows) const {
  double s = seconds > 0 ? seconds : 1;
  auto stats = [&](const Row& r) {
    auto [p50, p95] = r.p50_p95();
    return nlohmann::json{{"requests", r.requests},        {"rate", r.requests / s},
                          {"client_errors", r.client_errors}, {"server_errors", r.server_errors},
                          {"p50_ns", p50},                 {"p95_ns", p95}};
  };
  nlohmann::json j{{"seconds", seconds}, {"calls", calls_}, {"processes", nlohmann::json::array()},
                   {"endpoints", nlohmann::json::array()}};
  for (auto it : busiest(processes_, rows)) {
    auto row = stats(it->second);
    row["pid"] = std::get<0>(it->first);
    row["comm"] = std::get<1>(it->first);
    j["processes"].push_back(std::move(row));
  }
  for (auto it : busiest(endpoints_, rows)) {
    auto row = stats(it->second);
    const auto& [role, method, host, endpoint] = it->first;
    row["role"] = role;
    row["method"] = method;
    row["host"] = host;
    row["endpoint"] = endpoint;
    j["endpoints"].push_back(std::move(row));
  }
  return j;
}

}  // namespace vigil::cli
