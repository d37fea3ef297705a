// libFuzzer: the policy loader takes files from operators and directories it
// watches; any bytes give policies or errors, never a crash or a hang. What
// loads is also compiled into kernel tables and judged both ways: the tables
// must agree with the reference evaluator on whether the connect is allowed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/compiler.h"
#include "policy/evaluator.h"
#include "policy/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ps = vigil::policy::load_policies(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  if (!ps.ok()) {
    if (ps.error().message.empty()) __builtin_trap();
    return 0;
  }
  auto tables = vigil::policy::compile(*ps);
  vigil::policy::Evaluator e(std::move(*ps));
  auto d = vigil::policy::parse_destination("[::ffff:10.1.2.3]:443", vigil::policy::Proto::kTcp);
  d->fqdns = {"api.example.com"};
  vigil::policy::Subject who{"/usr/bin/python3", 1001, "/system.slice/x.service"};
  auto ref = e.evaluate(who, *d);
  if (tables.ok()) {
    auto got = tables->judge(who, *d);
    if ((ref.outcome == vigil::policy::Outcome::kAllow) != (got.outcome == vigil::policy::Outcome::kAllow))
      __builtin_trap();
  } else if (tables.error().message.empty()) {
    __builtin_trap();
  }
  return 0;
}
