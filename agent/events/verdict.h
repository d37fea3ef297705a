// Egress verdict records -> egress event bodies, named from the compiled
// tables of the generation that judged them.
#pragma once

#include "agent/events/events.h"
#include "bpf/include/vigil/egress_abi.h"
#include "policy/compiler.h"

namespace vigil {

EgressEvent egress_event(const vigil_eg_event& ev, const policy::Tables& tables);

}  // namespace vigil
