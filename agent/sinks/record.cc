#include "agent/sinks/record.h"

#include <array>

#include "agent/events/events.h"

namespace vigil::sinks {
namespace {

constexpr std::array<std::string_view, 8> kKinds = {"connection", "api_call", "egress", "api_discovered",
                                                    "finding", "policy", "lost", "checkpoint"};
constexpr std::array<std::string_view, 5> kSeverities = {"info", "low", "medium", "high", "critical"};
constexpr std::array<std::string_view, kShedClasses> kShed = {"telemetry", "normal", "keep"};

}  // namespace

std::string_view shed_class_name(int c) { return c >= 0 && c < kShedClasses ? kShed[c] : "?"; }
std::string_view severity_name(int s) { return s >= 0 && s < 5 ? kSeverities[s] : "info"; }

int parse_severity(std::string_view s) {
  for (size_t i = 0; i < kSeverities.size(); ++i)
    if (kSeverities[i] == s) return static_cast<int>(i);
  return -1;
}

std::string_view event_kind_name(int k) { return k >= 0 && k < static_cast<int>(kKinds.size()) ? kKinds[k] : "?"; }

int event_kind_index(std::string_view kind) {
  for (size_t i = 0; i < kKinds.size(); ++i)
    if (kKinds[i] == kind) return static_cast<int>(i);
  return -1;
}

Record record_of(const Event& e, std::string_view line) {
  Record r;
  r.seq = e.seq;
  r.time_ns = e.time_ns;
  int k = event_kind_index(e.kind());
  r.kind = static_cast<uint8_t>(k < 0 ? 0 : k);
  r.line.assign(line);
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, ConnectionEvent> || std::is_same_v<T, ApiCallEvent>) {
          r.shed = kShedTelemetry;
        } else if constexpr (std::is_same_v<T, EgressEvent>) {
          r.severity = b.verdict == "deny" ? kSevHigh : b.verdict == "would_deny" ? kSevMedium : kSevInfo;
          r.shed = b.verdict == "allow" ? kShedNormal : kShedKeep;
        } else if constexpr (std::is_same_v<T, FindingEvent>) {
          int s = parse_severity(b.severity);
          r.severity = static_cast<uint8_t>(s < 0 ? kSevInfo : s);
          r.shed = kShedKeep;
        } else if constexpr (std::is_same_v<T, PolicyEvent>) {
          r.severity = b.action == "rejected" ? kSevMedium : kSevInfo;
          r.shed = kShedKeep;
        } else if constexpr (std::is_same_v<T, CheckpointEvent>) {
          r.shed = kShedKeep;
        } else if constexpr (std::is_same_v<T, LostEvent>) {
          r.severity = kSevMedium;
          r.shed = kShedKeep;
        }
      },
      e.body);
  return r;
}

}  // namespace vigil::sinks
