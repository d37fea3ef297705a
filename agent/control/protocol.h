// The control-socket protocol, shared by vigild and the vigil CLI: a client
// sends one JSON request line {"cmd": NAME, ...}; the agent answers one JSON
// line, except for `trace`, which streams matching events until the client goes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/events/events.h"
#include "base/result.h"

namespace vigil::control {

inline constexpr std::string_view kStatus = "status";                // -> the agent's status object
inline constexpr std::string_view kTrace = "trace";                  // + TraceFilter fields -> event lines
inline constexpr std::string_view kPolicyApply = "policy_apply";     // + "name", "content" -> ok, applied, file
inline constexpr std::string_view kPolicyList = "policy_list";       // -> policies, enforcement
inline constexpr std::string_view kPolicyDisable = "policy_disable"; // -> ok
inline constexpr std::string_view kPolicyReload = "policy_reload";   // -> policies, enforcement
inline constexpr std::string_view kMapExport = "map_export";         // + "service"? -> ok, inventory

// {"cmd": cmd}
nlohmann::json request(std::string_view cmd);

}  // namespace vigil::control

namespace vigil {

// The filters of a trace request.
struct TraceFilter {
  std::optional<uint32_t> pid;
  std::string comm;
  std::vector<std::string> kinds;

  bool matches(const Event& e) const;
  nlohmann::json to_json() const;  // the whole request, "cmd" included
  static Result<TraceFilter> from_json(const nlohmann::json& j);
};

}  // namespace vigil
