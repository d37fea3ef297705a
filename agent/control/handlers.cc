#include "agent/control/handlers.h"

namespace vigil {
namespace {

nlohmann::json failed(const std::string& message) { return {{"ok", false}, {"errors", {message}}}; }

}  // namespace

void serve_policy_commands(ControlServer& server, PolicyService& policies) {
  server.on(control::kPolicyApply, [&policies](const nlohmann::json& req) {
    if (!req.contains("name") || !req["name"].is_string() || !req.contains("content") || !req["content"].is_string())
      return failed(fmt::format("{} needs \"name\" and \"content\" strings", control::kPolicyApply));
    auto applied = policies.apply(req["name"].get<std::string>(), req["content"].get<std::string>());
    if (!applied) return failed(applied.error().message);
    nlohmann::json reply = policies.list();
    reply["ok"] = true;
    reply["applied"] = applied->policies;
    reply["file"] = applied->file;
    return reply;
  });
  server.on(control::kPolicyList, [&policies](const nlohmann::json&) { return policies.list(); });
  server.on(control::kPolicyDisable, [&policies](const nlohmann::json&) {
    if (auto s = policies.disable(); !s) return failed(s.error().message);
    nlohmann::json reply = policies.list();
    reply["ok"] = true;
    return reply;
  });
  server.on(control::kPolicyReload, [&policies](const nlohmann::json&) {
    policies.reload(ReloadReason::kRequest);
    return policies.list();
  });
}

}  // namespace vigil
