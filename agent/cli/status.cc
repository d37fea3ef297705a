// vigil status: the agent, its programs, counters, TLS libraries and sinks.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "agent/cli/cli.h"
#include "agent/cli/client.h"
#include "agent/control/protocol.h"

namespace vigil::cli {
namespace {

void print_status(const nlohmann::json& status) {
  const auto& c = status["counters"];
  fmt::print("vigild {} on {} (pid {}), up {}s\n", status.value("version", "?"),
             status.value("node", "?"), status.value("pid", 0), status.value("uptime_s", 0));
  fmt::print("programs:\n  {:>6}  {:<8}  {}\n", "ID", "ATTACHED", "NAME");
  for (const auto& p : status["programs"])
    fmt::print("  {:>6}  {:<8}  {}\n", p.value("id", 0), p.value("attached", false) ? "yes" : "no",
               p.value("name", "?"));
  fmt::print("counters: {} events shipped, {} kernel events, {} processes, {} open connections, "
             "{} trace clients\n",
             c.value("events", 0), c.value("kernel_events", 0), c.value("processes", 0),
             c.value("connections", 0), c.value("trace_clients", 0));
  if (c.contains("http"))
    fmt::print("http: {} api_calls, {} connections with HTTP in flight, {} bytes not captured (cap or loss)\n",
               c["http"].value("api_calls", 0), c["http"].value("open_http_connections", 0),
               c["http"].value("uncaptured_bytes", 0));
  std::string lost;
  for (const auto& [k, v] : c["lost"].items()) lost += fmt::format(" {}={}", k, v.get<uint64_t>());
  fmt::print("lost:{}\n", lost.empty() ? " none" : lost);
  if (c.contains("http") && c["http"].contains("api_call_events")) {
    const auto& a = c["http"]["api_call_events"];
    fmt::print("api_call events: level {}{}, {} shipped, {} not shipped (counted and in the inventory)\n",
               a.value("level", ""),
               a.value("level", "") == "sampled" ? fmt::format(" (1 in {})", a.value("sample_every", 0)) : "",
               a.value("shipped", 0), a.value("skipped", 0));
  }
  if (status.contains("tls") && !status["tls"].empty()) {
    fmt::print("tls libraries:\n  {:<12} {:>5}  {:<46} {}\n", "LIB", "PROCS", "PATH", "PROBES");
    for (const auto& l : status["tls"]) {
      std::vector<std::string> probes = l["probes"];
      std::string err = l.value("error", "");
      std::string lib = l.value("lib", "?"), version = l.value("version", "");
      if (!version.empty()) lib = version;  // a Go executable: its Go version says more than "go"
      fmt::print("  {:<12} {:>5}  {:<46} {}\n", lib, l.value("processes", 0), l.value("path", "?"),
                 err.empty() ? fmt::format("{}", fmt::join(probes, ", ")) : "not attached: " + err);
    }
  }
  if (c.contains("tls") && c["tls"].contains("attached_files")) {
    const auto& t = c["tls"];
    fmt::print("tls: {} files probed, {} found not probeable ({} remembered), {} attaches deferred, {} probes detaching\n",
               t.value("attached_files", 0), t.value("rejected_files", 0), t.value("rejected_remembered", 0),
               t.value("deferred_attaches", 0), t.value("detaching_probes", 0));
  }
  if (status.contains("inventory") && status["inventory"].contains("endpoints")) {
    const auto& i = status["inventory"];
    fmt::print("inventory: {} endpoints ({} pending), {} findings, {} calls, {} evicted, {:.1f} MiB, store {}{}\n",
               i.value("endpoints", 0), i.value("pending", 0), i.value("findings", 0), i.value("calls", 0),
               i.value("evicted", 0), i.value("memory_bytes", 0) / 1048576.0, i.value("store", "") == "" ? "none" : i.value("store", ""),
               i.value("store_error", "").empty() ? "" : " (error: " + i.value("store_error", "") + ")");
  }
  for (const auto& s : status["sinks"]) {
    uint64_t dropped = 0;
    if (s.contains("dropped"))
      for (const auto& [k, v] : s["dropped"].items()) dropped += v.get<uint64_t>();
    fmt::print("sink: {} -> {}: {} delivered, {} queued{}, {} dropped, {} rejected{}\n", s.value("name", "?"),
               s.value("output", "?"), s.value("delivered", 0), s.value("queued", 0),
               s.value("spooled", false) ? fmt::format(", {} spooled ({:.1f} MiB)", s.value("spool_records", 0),
                                                       s.value("spool_bytes", 0) / 1048576.0)
                                         : "",
               dropped, s.value("rejected", 0),
               s.value("last_error", "").empty() ? "" : " (last error: " + s.value("last_error", "") + ")");
  }
}

}  // namespace

void add_status(CLI::App& app, const Globals& g, Verbs& verbs) {
  auto* status = app.add_subcommand("status", "agent, programs and counters");
  verbs.push_back({status, [&g] {
                     int rc = kExitOk;
                     auto reply = ask(g.socket(), control::request(control::kStatus), rc);
                     if (!reply) return rc;
                     if (g.json()) fmt::print("{}\n", reply->dump(2));
                     else print_status(*reply);
                     return kExitOk;
                   }});
}

}  // namespace vigil::cli
