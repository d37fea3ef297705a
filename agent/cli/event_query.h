// What `vigil trace` and `vigil events` filter events by, on their JSON
// (DESIGN.md §4): pid, comm, kinds, host, path prefix, egress verdict, minimum
// severity and a time window.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/result.h"

namespace vigil::cli {

struct EventQuery {
  uint32_t pid = 0;  // 0: any
  std::string comm, host, path, verdict, severity;
  std::vector<std::string> kinds;
  std::string since, until;  // RFC 3339, or a duration before now (30s, 10m, 2h, 1d)
  uint64_t since_ns = 0, until_ns = 0;  // resolved by resolve()

  // Registers --pid --comm --kind --host --path --verdict --severity (and --since/--until when `window`).
  void add_options(CLI::App* cmd, bool window);
  Status resolve(uint64_t now_ns);
  bool matches(const nlohmann::json& e) const;
};

// An event's severity: a finding's own; an egress deny high, would_deny medium; lost and
// rejected policies medium; the rest info (the sinks' classes, agent/sinks/record.cc).
int event_severity(const nlohmann::json& e);

// "2026-11-22T08:30:00.123456789Z" (or with fewer fractional digits) -> ns since the epoch; 0 if malformed.
uint64_t parse_rfc3339_ns(std::string_view t);

}  // namespace vigil::cli
