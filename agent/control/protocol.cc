#include "agent/control/protocol.h"

#include <algorithm>

namespace vigil {

nlohmann::json control::request(std::string_view cmd) { return {{"cmd", cmd}}; }

bool TraceFilter::matches(const Event& e) const {
  if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), e.kind()) == kinds.end())
    return false;
  if (pid && (!e.process || e.process->pid != *pid)) return false;
  if (!comm.empty() && (!e.process || e.process->comm != comm)) return false;
  return true;
}

nlohmann::json TraceFilter::to_json() const {
  nlohmann::json j = control::request(control::kTrace);
  if (pid) j["pid"] = *pid;
  if (!comm.empty()) j["comm"] = comm;
  if (!kinds.empty()) j["kinds"] = kinds;
  return j;
}

Result<TraceFilter> TraceFilter::from_json(const nlohmann::json& j) {
  TraceFilter f;
  try {
    if (j.contains("pid")) f.pid = j.at("pid").get<uint32_t>();
    if (j.contains("comm")) f.comm = j.at("comm").get<std::string>();
    if (j.contains("kinds")) f.kinds = j.at("kinds").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return Error{fmt::format("bad trace filter: {}", e.what())};
  }
  return f;
}

}  // namespace vigil
