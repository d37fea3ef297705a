#include "agent/events/verdict.h"

#include <netinet/in.h>

#include <fmt/format.h>

#include "collectors/host/net.h"

namespace vigil {

EgressEvent egress_event(const vigil_eg_event& ev, const policy::Tables& t) {
  EgressEvent out;
  out.verdict = ev.verdict == VIGIL_EG_ALLOW ? "allow" : ev.verdict == VIGIL_EG_DENY ? "deny" : "would_deny";
  bool known = ev.policy < t.policies.size();
  out.policy = known ? t.policies[ev.policy].name : fmt::format("policy#{}", ev.policy);
  out.mode = ev.verdict == VIGIL_EG_DENY ? "enforce"
             : ev.verdict == VIGIL_EG_WOULD_DENY ? "audit"
             : known ? policy::mode_name(t.policies[ev.policy].mode) : "audit";
  out.rule = ev.rule == VIGIL_EG_RULE_LOOPBACK ? "loopback"
             : ev.rule == VIGIL_EG_RULE_NONE   ? ""
                                               : fmt::format("egress[{}]", ev.rule);
  out.proto = ev.proto == IPPROTO_UDP ? "udp" : "tcp";
  out.dst.addr = format_mapped_addr(ev.addr);
  out.dst.port = ev.port;
  if (ev.fqdn_hash)
    if (auto p = t.pattern_of(ev.fqdn_hash); !p.empty()) out.dst.fqdn = std::string(p);
  return out;
}

}  // namespace vigil
