// One encoded event on its way to a sink, with what a sink needs to filter,
// frame (syslog) and shed it without parsing the JSON again.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vigil {
struct Event;
}

namespace vigil::sinks {

// What goes first when a queue or a spool is full: telemetry (connection,
// api_call), then the rest, and egress denies, findings and policy events last.
enum ShedClass : uint8_t { kShedTelemetry = 0, kShedNormal = 1, kShedKeep = 2 };
constexpr int kShedClasses = 3;
std::string_view shed_class_name(int c);  // "telemetry" | "normal" | "keep"

// DESIGN.md §4 finding severities; other kinds get one (severity_of).
enum Severity : uint8_t { kSevInfo = 0, kSevLow, kSevMedium, kSevHigh, kSevCritical };
std::string_view severity_name(int s);
// "info".."critical" -> the level; -1 for anything else.
int parse_severity(std::string_view s);

struct Record {
  uint64_t seq = 0;
  uint64_t time_ns = 0;  // wall clock
  uint8_t kind = 0;      // index into event_kind_names()
  uint8_t severity = kSevInfo;
  uint8_t shed = kShedNormal;
  std::string line;  // the JSON object, no newline
};

// connection, api_call, egress, api_discovered, finding, policy, lost, checkpoint.
std::string_view event_kind_name(int k);
int event_kind_index(std::string_view kind);  // -1 when unknown

// The record of an event whose JSON is `line`.
Record record_of(const Event& e, std::string_view line);

}  // namespace vigil::sinks
