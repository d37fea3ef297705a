// The control commands that drive the policy service: requests checked and
// turned into calls, results shaped into the replies of protocol.h.
#pragma once

#include "agent/control/server.h"
#include "agent/policy/service.h"

namespace vigil {

void serve_policy_commands(ControlServer& server, PolicyService& policies);

}  // namespace vigil
