#include <gtest/gtest.h>

#include "policy/evaluator.h"
#include "policy/loader.h"
#include "policy/selector.h"

namespace vigil::policy {
namespace {

constexpr const char* kGood = R"(apiVersion: vigil/v1
kind: EgressPolicy
metadata:
  name: payments-egress
spec:
  mode: enforce
  selector:
    binaries: ["/usr/bin/python3*"]
    cgroups: ["/system.slice/payments.service"]
    uids: [1001]
  allowLoopback: false
  egress:
    - to:
        - cidr: 10.0.0.0/8
          except: [10.1.0.0/16]
        - fqdn: api.stripe.com
        - fqdn: "*.s3.amazonaws.com"
      ports:
        - {port: 443, protocol: tcp}
        - {port: 8000, endPort: 8100}
---
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: curl-audit}
spec:
  selector: {binaries: [/usr/bin/curl]}
  egress:
    - to: [{cidr: "127.0.0.2/32"}, {cidr: "::ffff:127.0.0.4/128"}, {cidr: "2001:db8::/32"}]
)";

TEST(PolicyLoad, TheDesignExample) {
  auto ps = load_policies(kGood, "p.yaml");
  ASSERT_TRUE(ps.ok()) << ps.error().message;
  ASSERT_EQ(ps->size(), 2u);
  const EgressPolicy& p = (*ps)[0];
  EXPECT_EQ(p.name, "payments-egress");
  EXPECT_EQ(p.source, "p.yaml:1");
  EXPECT_EQ(p.mode, Mode::kEnforce);
  EXPECT_FALSE(p.allow_loopback);
  EXPECT_EQ(p.selector.uids, std::vector<uint32_t>{1001});
  ASSERT_EQ(p.egress.size(), 1u);
  ASSERT_EQ(p.egress[0].to.size(), 3u);
  EXPECT_TRUE(p.egress[0].to[0].cidr->v4);
  EXPECT_EQ(p.egress[0].to[0].cidr->prefix, 96 + 8);
  EXPECT_EQ(p.egress[0].to[0].except.size(), 1u);
  EXPECT_EQ(p.egress[0].to[2].fqdn, "*.s3.amazonaws.com");
  ASSERT_EQ(p.egress[0].ports.size(), 2u);
  EXPECT_EQ(p.egress[0].ports[0].proto, Proto::kTcp);
  EXPECT_EQ(p.egress[0].ports[1].first, 8000);
  EXPECT_EQ(p.egress[0].ports[1].last, 8100);
  EXPECT_EQ(p.egress[0].ports[1].proto, Proto::kAny);
  EXPECT_EQ((*ps)[1].mode, Mode::kAudit);
  EXPECT_TRUE((*ps)[1].allow_loopback);
}

struct Bad {
  const char* name;
  std::string spec;  // replaces the spec of a minimal valid policy, or the whole doc if it starts with "apiVersion"
  const char* expected;
};
void PrintTo(const Bad& b, std::ostream* os) { *os << b.name; }

std::string doc(const std::string& spec_or_doc) {
  if (spec_or_doc.rfind("apiVersion", 0) == 0) return spec_or_doc;
  return "apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata:\n  name: p\nspec:\n" + spec_or_doc;
}

class BadPolicy : public ::testing::TestWithParam<Bad> {};
TEST_P(BadPolicy, IsRejectedWholeWithAPreciseMessage) {
  // A valid policy in the same file must not survive a bad one.
  std::string text = doc(GetParam().spec) + "\n---\n" +
                     doc("  selector: {uids: [1]}\n  egress: [{to: [{cidr: 10.0.0.0/8}]}]\n");
  auto ps = load_policies(text, "bad.yaml");
  ASSERT_FALSE(ps.ok());
  EXPECT_NE(ps.error().message.find(GetParam().expected), std::string::npos) << ps.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadPolicy,
    ::testing::Values(
        Bad{"EmptySelector", "  selector: {}\n", "bad.yaml:6:13: 'spec.selector' is empty"},
        Bad{"NoSelector", "  mode: audit\n", "'spec.selector' is required"},
        Bad{"PodsEmpty", "  selector: {pods: {}}\n", "'spec.selector.pods' is empty: give namespace, matchLabels"},
        Bad{"PodsUnknownKey", "  selector: {pods: {namespace: shop, labels: {app: api}}}\n",
            "unknown key 'spec.selector.pods.labels' (expected one of: namespace, matchLabels)"},
        Bad{"PodsLabelsNotMap", "  selector: {pods: {matchLabels: [app]}}\n",
            "'spec.selector.pods.matchLabels' must be a map of label: value"},
        Bad{"PodsAndCgroups", "  selector: {cgroups: [/a], pods: {namespace: shop}}\n",
            "gives both cgroups and pods; both name cgroups"},
        Bad{"PodsEmptyList", "  selector: {pods: []}\n", "'spec.selector.pods' is an empty list"},
        Bad{"UnknownSpecKey", "  selector: {uids: [1]}\n  egres: []\n",
            "bad.yaml:7:3: unknown key 'spec.egres' (did you mean 'egress'?)"},
        Bad{"UnknownPeerKey", "  selector: {uids: [1]}\n  egress: [{to: [{cdir: 10.0.0.0/8}]}]\n",
            "unknown key 'spec.egress[0].to[0].cdir' (did you mean 'cidr'?)"},
        Bad{"BadMode", "  mode: block\n  selector: {uids: [1]}\n",
            "bad.yaml:6:9: 'spec.mode' is 'block'; expected audit or enforce"},
        Bad{"UidNotNumber", "  selector: {uids: [root]}\n", "'spec.selector.uids[0]' must be an integer"},
        Bad{"UidNegative", "  selector: {uids: [-1]}\n", "'spec.selector.uids[0]' must be an integer"},
        Bad{"BinariesNotList", "  selector: {binaries: /usr/bin/curl}\n", "'spec.selector.binaries' must be a list"},
        Bad{"BadCidr", "  selector: {uids: [1]}\n  egress: [{to: [{cidr: 10.0.0.300/8}]}]\n",
            "'spec.egress[0].to[0].cidr': '10.0.0.300/8' is not an IPv4 or IPv6 address or CIDR"},
        Bad{"CidrPrefixTooLong", "  selector: {uids: [1]}\n  egress: [{to: [{cidr: 10.0.0.0/33}]}]\n",
            "an IPv4 prefix is at most /32"},
        Bad{"CidrHostBits", "  selector: {uids: [1]}\n  egress: [{to: [{cidr: 10.1.2.3/8}]}]\n",
            "'10.1.2.3/8' has host bits set beyond /8"},
        Bad{"ExceptOutside", "  selector: {uids: [1]}\n  egress: [{to: [{cidr: 10.0.0.0/8, except: [11.0.0.0/16]}]}]\n",
            "'spec.egress[0].to[0].except[0]' (11.0.0.0/16) is not a narrower range inside 10.0.0.0/8"},
        Bad{"ExceptOnFqdn", "  selector: {uids: [1]}\n  egress: [{to: [{fqdn: a.test, except: [10.0.0.0/8]}]}]\n",
            "'spec.egress[0].to[0].except' applies to a cidr"},
        Bad{"CidrAndFqdn", "  selector: {uids: [1]}\n  egress: [{to: [{cidr: 10.0.0.0/8, fqdn: a.test}]}]\n",
            "needs exactly one of cidr or fqdn"},
        Bad{"WildcardInside", "  selector: {uids: [1]}\n  egress: [{to: [{fqdn: \"api.*.test\"}]}]\n",
            "'*' is only allowed as the first label"},
        Bad{"BadLabel", "  selector: {uids: [1]}\n  egress: [{to: [{fqdn: \"-bad.test\"}]}]\n",
            "has an invalid label '-bad'"},
        Bad{"PortZero", "  selector: {uids: [1]}\n  egress: [{ports: [{port: 0}]}]\n",
            "'spec.egress[0].ports[0].port' must be an integer from 1 to 65535, got '0'"},
        Bad{"PortTooBig", "  selector: {uids: [1]}\n  egress: [{ports: [{port: 70000}]}]\n",
            "must be an integer from 1 to 65535, got '70000'"},
        Bad{"EndBelowStart", "  selector: {uids: [1]}\n  egress: [{ports: [{port: 9000, endPort: 8000}]}]\n",
            "'spec.egress[0].ports[0].endPort' (8000) is below port (9000)"},
        Bad{"BadProtocol", "  selector: {uids: [1]}\n  egress: [{ports: [{port: 53, protocol: icmp}]}]\n",
            "'spec.egress[0].ports[0].protocol' is 'icmp'; expected tcp, udp or any"},
        Bad{"PortMissing", "  selector: {uids: [1]}\n  egress: [{ports: [{protocol: tcp}]}]\n",
            "'spec.egress[0].ports[0].port' is required"},
        Bad{"LoopbackNotBool", "  selector: {uids: [1]}\n  allowLoopback: maybe\n",
            "'spec.allowLoopback' must be true or false"},
        Bad{"WrongKind", "apiVersion: vigil/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {selector: {uids: [1]}}\n",
            "'kind' is 'NetworkPolicy'; expected EgressPolicy"},
        Bad{"WrongVersion", "apiVersion: v1\nkind: EgressPolicy\nmetadata: {name: p}\nspec: {selector: {uids: [1]}}\n",
            "'apiVersion' is 'v1'; expected vigil/v1"},
        Bad{"NoName", "apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata: {}\nspec: {selector: {uids: [1]}}\n",
            "'metadata.name' is required"},
        Bad{"BadName", "apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata: {name: Bad_Name}\nspec: {selector: {uids: [1]}}\n",
            "'metadata.name' 'Bad_Name' must be"},
        Bad{"DuplicateName", "apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata: {name: p}\nspec: {selector: {uids: [1]}}\n",
            "policy name 'p' is used twice"},
        Bad{"SyntaxError", "apiVersion: vigil/v1\nkind: [unclosed\n", "bad.yaml:"},
        Bad{"StrayComma", "apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata: {name: q}\nspec: {selector: {uids: [1]}}\n---\n,\n",
            "unexpected character here"},
        Bad{"NotAMapping", "apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata: {name: p}\nspec: [1, 2]\n",
            "'spec' must be a mapping"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(PolicyLoad, AllErrorsOfAFileAreReported) {
  auto ps = load_policies(doc("  mode: x\n  selector: {uids: [a]}\n  egress: [{ports: [{port: 0}]}]\n"), "f.yaml");
  ASSERT_FALSE(ps.ok());
  const std::string& m = ps.error().message;
  EXPECT_NE(m.find("spec.mode"), std::string::npos);
  EXPECT_NE(m.find("spec.selector.uids[0]"), std::string::npos);
  EXPECT_NE(m.find("spec.egress[0].ports[0].port"), std::string::npos);
}

TEST(PolicyLoad, MissingFile) {
  auto ps = load_policy_file("/nonexistent/p.yaml");
  ASSERT_FALSE(ps.ok());
  EXPECT_NE(ps.error().message.find("read policy file /nonexistent/p.yaml: ENOENT"), std::string::npos);
}

Destination dst(const char* text, Proto proto = Proto::kTcp, std::vector<std::string> names = {}) {
  auto d = parse_destination(text, proto);
  EXPECT_TRUE(d.ok()) << text;
  d->fqdns = std::move(names);
  return *d;
}

class Evaluate : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ps = load_policies(kGood, "p.yaml");
    ASSERT_TRUE(ps.ok()) << ps.error().message;
    eval_ = std::make_unique<Evaluator>(std::move(*ps));
  }
  Verdict payments(const Destination& d) {
    return eval_->evaluate({"/usr/bin/python3.11", 1001, "/system.slice/payments.service"}, d);
  }
  std::unique_ptr<Evaluator> eval_;
};

TEST(PodSelectors, LoadAsAMapOrAListAndMatchNamespaceAndLabels) {
  auto ps = load_policies(doc("  selector:\n    pods: {namespace: shop, matchLabels: {app: api, tier: backend}}\n"
                              "  egress: [{to: [{cidr: 10.0.0.0/8}]}]\n---\n" +
                              std::string("apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata:\n  name: q\nspec:\n"
                              "  selector:\n    pods: [{namespace: a}, {matchLabels: {app: b}}]\n")),
                          "pods.yaml");
  ASSERT_TRUE(ps.ok()) << ps.error().message;
  ASSERT_EQ((*ps)[0].selector.pods.size(), 1u);
  EXPECT_EQ((*ps)[0].selector.pods[0].ns, "shop");
  EXPECT_EQ((*ps)[0].selector.pods[0].match_labels.size(), 2u);
  ASSERT_EQ((*ps)[1].selector.pods.size(), 2u);
  Subject in_api{"/usr/bin/python3", 0, "/kubepods/pod1", true, "shop", {{"app", "api"}, {"tier", "backend"}, {"x", "y"}}};
  EXPECT_TRUE(selects((*ps)[0].selector, in_api));
  Subject other_ns = in_api;
  other_ns.pod_namespace = "dev";
  EXPECT_FALSE(selects((*ps)[0].selector, other_ns));
  Subject missing_label = in_api;
  missing_label.pod_labels.erase("tier");
  EXPECT_FALSE(selects((*ps)[0].selector, missing_label));
  Subject host{"/usr/bin/python3", 0, "/system.slice/x.service"};
  EXPECT_FALSE(selects((*ps)[0].selector, host)) << "a pod selector selects no host process";
  Subject in_b{"/bin/b", 0, "/kubepods/pod2", true, "any", {{"app", "b"}}};
  EXPECT_TRUE(selects((*ps)[1].selector, in_b)) << "any selector of the list";
}

TEST_F(Evaluate, UnselectedProcessesAreUnrestricted) {
  auto v = eval_->evaluate({"/usr/bin/python3.11", 1002, "/system.slice/payments.service"}, dst("10.0.0.1:443"));
  EXPECT_EQ(v.outcome, Outcome::kUnrestricted) << "uid differs: every selector field must match";
  v = eval_->evaluate({"/usr/lib/python3/x", 1001, "/system.slice/payments.service"}, dst("10.0.0.1:443"));
  EXPECT_EQ(v.outcome, Outcome::kUnrestricted) << "glob does not cross '/'";
}

TEST_F(Evaluate, CidrExceptPortsAndRanges) {
  EXPECT_EQ(payments(dst("10.2.3.4:443")).outcome, Outcome::kAllow);
  EXPECT_EQ(payments(dst("10.2.3.4:443")).rule, "egress[0]");
  EXPECT_EQ(payments(dst("10.2.3.4:443")).policy, "payments-egress");
  EXPECT_EQ(payments(dst("10.1.3.4:443")).outcome, Outcome::kDeny) << "except";
  EXPECT_EQ(payments(dst("10.2.3.4:444")).outcome, Outcome::kDeny) << "port";
  EXPECT_EQ(payments(dst("10.2.3.4:443", Proto::kUdp)).outcome, Outcome::kDeny) << "protocol";
  EXPECT_EQ(payments(dst("10.2.3.4:8050", Proto::kUdp)).outcome, Outcome::kAllow) << "range, any protocol";
  EXPECT_EQ(payments(dst("10.2.3.4:8101")).outcome, Outcome::kDeny);
  EXPECT_EQ(payments(dst("[::ffff:10.2.3.4]:443")).outcome, Outcome::kAllow) << "IPv4-mapped judged as IPv4";
  EXPECT_EQ(payments(dst("[::ffff:10.1.0.1]:443")).outcome, Outcome::kDeny);
}

TEST_F(Evaluate, LoopbackFollowsAllowLoopback) {
  auto v = payments(dst("127.0.0.1:443"));
  EXPECT_EQ(v.outcome, Outcome::kDeny) << "allowLoopback: false";
  EXPECT_EQ(v.policy, "payments-egress");
  auto curl = eval_->evaluate({"/usr/bin/curl", 0, "/"}, dst("127.0.0.1:80"));
  EXPECT_EQ(curl.outcome, Outcome::kAllow);
  EXPECT_EQ(curl.rule, "loopback");
  EXPECT_EQ(eval_->evaluate({"/usr/bin/curl", 0, "/"}, dst("[::1]:80")).rule, "loopback");
}

TEST_F(Evaluate, FqdnExactAndWildcard) {
  EXPECT_EQ(payments(dst("192.0.2.7:443", Proto::kTcp, {"api.stripe.com"})).outcome, Outcome::kAllow);
  EXPECT_EQ(payments(dst("192.0.2.7:443", Proto::kTcp, {"bucket.s3.amazonaws.com"})).outcome, Outcome::kAllow);
  EXPECT_EQ(payments(dst("192.0.2.7:443", Proto::kTcp, {"s3.amazonaws.com"})).outcome, Outcome::kDeny)
      << "*. matches sub-domains only";
  EXPECT_EQ(payments(dst("192.0.2.7:443", Proto::kTcp, {"evil-stripe.com"})).outcome, Outcome::kDeny);
  EXPECT_EQ(payments(dst("192.0.2.7:443")).outcome, Outcome::kDeny) << "no name known";
}

TEST_F(Evaluate, AuditModeWouldDeny) {
  auto curl = eval_->evaluate({"/usr/bin/curl", 0, "/"}, dst("192.0.2.1:80"));
  EXPECT_EQ(curl.outcome, Outcome::kWouldDeny);
  EXPECT_EQ(curl.policy, "curl-audit");
  EXPECT_EQ(eval_->evaluate({"/usr/bin/curl", 0, "/"}, dst("127.0.0.2:80")).outcome, Outcome::kAllow);
  EXPECT_EQ(eval_->evaluate({"/usr/bin/curl", 0, "/"}, dst("[2001:db8::5]:80")).outcome, Outcome::kAllow);
}

TEST(Evaluate2, UnionOfAllowsAndEnforceWins) {
  auto ps = load_policies(R"(apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: a}
spec:
  mode: enforce
  allowLoopback: false
  selector: {uids: [5]}
  egress: [{to: [{cidr: 127.0.0.2/32}]}]
---
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: b}
spec:
  allowLoopback: false
  selector: {uids: [5]}
  egress: [{to: [{cidr: 127.0.0.3/32}]}]
)", "u.yaml");
  ASSERT_TRUE(ps.ok()) << ps.error().message;
  Evaluator e(std::move(*ps));
  EXPECT_EQ(e.evaluate({"/x", 5, "/"}, dst("127.0.0.2:1")).policy, "a");
  EXPECT_EQ(e.evaluate({"/x", 5, "/"}, dst("127.0.0.3:1")).policy, "b") << "union of allows";
  auto v = e.evaluate({"/x", 5, "/"}, dst("127.0.0.4:1"));
  EXPECT_EQ(v.outcome, Outcome::kDeny) << "one enforcing policy makes it a deny";
  EXPECT_EQ(v.policy, "a");
}

TEST(Destination, Parsing) {
  EXPECT_TRUE(parse_destination("127.0.0.1:80", Proto::kTcp).ok());
  EXPECT_TRUE(parse_destination("[::1]:80", Proto::kTcp).ok());
  EXPECT_FALSE(parse_destination("::1:80", Proto::kTcp).ok());
  EXPECT_FALSE(parse_destination("127.0.0.1", Proto::kTcp).ok());
  EXPECT_FALSE(parse_destination("127.0.0.1:0", Proto::kTcp).ok());
  EXPECT_FALSE(parse_destination("host.test:80", Proto::kTcp).ok());
}

}  // namespace
}  // namespace vigil::policy
