// vigil policy generate, as a library: a recorded events file in, the exact
// policies out (tests/unit/data), and what it must never allow.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/file.h"
#include "policy/compiler.h"
#include "policy/generator.h"
#include "policy/loader.h"

namespace vigil::policy {
namespace {

const std::string kData = VIGIL_UNIT_DATA;

Result<Generated> generate_from(const std::string& file, GenerateOptions o = {}) {
  std::ifstream in(kData + "/" + file);
  o.source = file;
  return generate_policies(in, o);
}

TEST(Generator, RecordedEventsGiveTheExpectedPolicies) {
  auto g = generate_from("observed_events.jsonl");
  ASSERT_TRUE(g) << g.error().message;
  auto expected = read_file(kData + "/generated_policies.yaml");
  ASSERT_TRUE(expected) << expected.error().message;
  EXPECT_EQ(g->yaml, *expected);
  EXPECT_EQ(g->lines, 12u);
  EXPECT_EQ(g->connections, 6u) << "client connections to non-loopback destinations";
  ASSERT_EQ(g->warnings.size(), 1u);
  EXPECT_EQ(g->warnings[0], "observed_events.jsonl:7: not a JSON event (skipped)");
}

TEST(Generator, GeneratedPoliciesAllowExactlyWhatWasSeen) {
  auto g = generate_from("observed_events.jsonl");
  ASSERT_TRUE(g) << g.error().message;
  auto ps = load_policies(g->yaml, "generated");
  ASSERT_TRUE(ps) << ps.error().message;
  auto t = compile(*ps);
  ASSERT_TRUE(t) << t.error().message;
  auto judge = [&](const std::string& exe, const std::string& dst, Proto proto, std::vector<std::string> fqdns = {}) {
    auto d = parse_destination(dst, proto);
    EXPECT_TRUE(d) << dst;
    d->fqdns = std::move(fqdns);
    return t->judge({exe, 1000, "/"}, *d).outcome;
  };
  EXPECT_EQ(judge("/usr/bin/curl", "93.184.216.34:443", Proto::kTcp, {"example.com"}), Outcome::kAllow);
  EXPECT_EQ(judge("/usr/bin/curl", "93.184.216.34:443", Proto::kTcp), Outcome::kWouldDeny)
      << "curl's destination was named: the name, not the address, is allowed";
  EXPECT_EQ(judge("/usr/bin/curl", "127.0.0.1:8080", Proto::kTcp), Outcome::kAllow) << "loopback";
  EXPECT_EQ(judge("/usr/bin/python3.11", "10.0.0.53:53", Proto::kUdp), Outcome::kAllow);
  EXPECT_EQ(judge("/usr/bin/python3.11", "10.0.0.53:53", Proto::kTcp), Outcome::kWouldDeny);
  EXPECT_EQ(judge("/usr/bin/python3.11", "[2001:db8::7]:443", Proto::kTcp), Outcome::kAllow);
  EXPECT_EQ(judge("/usr/bin/python3.11", "10.1.2.4:443", Proto::kTcp, {"api.stripe.com"}), Outcome::kAllow);
  EXPECT_EQ(judge("/usr/local/bin/python3.11", "10.0.0.53:53", Proto::kUdp), Outcome::kWouldDeny)
      << "same basename, other binary: its own policy";
  EXPECT_EQ(judge("/usr/sbin/nginx", "198.51.100.20:52000", Proto::kTcp), Outcome::kUnrestricted)
      << "a server side allows nothing";
}

TEST(Generator, OnePolicyPerCgroupInEnforceMode) {
  auto g = generate_from("observed_events.jsonl", {.select = "cgroup", .mode = "enforce"});
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_NE(g->yaml.find("cgroups: [\"/system.slice/payments.service\"]"), std::string::npos) << g->yaml;
  EXPECT_NE(g->yaml.find("name: payments-service-egress"), std::string::npos) << g->yaml;
  EXPECT_EQ(g->yaml.find("mode: audit"), std::string::npos);
  EXPECT_TRUE(load_policies(g->yaml, "generated"));
}

TEST(Generator, NothingToAllowIsAnErrorThatSaysWhy) {
  std::istringstream in(
      R"({"kind":"connection","state":"open","process":{"exe":"/opt/app"},"conn":{"proto":"tcp","role":"client","remote":{"addr":"127.0.0.1","port":80}}})"
      "\n[1,2]\n");
  auto g = generate_policies(in, {.source = "e.jsonl"});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().message, "e.jsonl holds no client connections to non-loopback destinations (2 lines)");
}

}  // namespace
}  // namespace vigil::policy
