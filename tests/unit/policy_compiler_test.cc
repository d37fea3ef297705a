// The compiled tables (what the kernel is given, and what `vigil policy test`
// judges with) against the reference semantics of the Evaluator.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "policy/compiler.h"
#include "policy/evaluator.h"
#include "policy/loader.h"
#include "policy/kernel_tables.h"
#include "policy/resolve.h"

namespace vigil::policy {
namespace {
namespace fs = std::filesystem;

TEST(PolicyCompiler, NameHashIsCaseBlindAndWildcardsHashTheirDottedSuffix) {
  EXPECT_EQ(name_hash("API.Example.com"), name_hash("api.example.com"));
  EXPECT_EQ(fqdn_pattern_hash("*.example.com"), name_hash(".example.com"));
  EXPECT_NE(fqdn_pattern_hash("*.example.com"), fqdn_pattern_hash("example.com"));
  // Backwards FNV-1a: the kernel extends a suffix hash one byte to the left.
  uint64_t h = name_hash(".com");
  h = (h ^ 'e') * VIGIL_EG_HASH_PRIME;
  EXPECT_EQ(h, name_hash("e.com"));
}

TEST(PolicyCompiler, CgroupGlobsCoverDescendants) {
  EXPECT_TRUE(cgroup_glob_matches("/system.slice/pay.service", "/system.slice/pay.service"));
  EXPECT_TRUE(cgroup_glob_matches("/system.slice/pay.service", "/system.slice/pay.service/sub"));
  EXPECT_TRUE(cgroup_glob_matches("/kubepods/*/pod1234", "/kubepods/burstable/pod1234/abc"));
  EXPECT_FALSE(cgroup_glob_matches("/system.slice/pay.service", "/system.slice/pay.service2"));
  EXPECT_FALSE(cgroup_glob_matches("/system.slice/pay.service", "/"));
  EXPECT_TRUE(cgroup_glob_matches("/", "/anything/below"));
}

TEST(PolicyCompiler, ExceptBecomesALongerPrefixWithTheOtherRulesPorts) {
  auto ps = load_policies(R"(apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: p}
spec:
  selector: {uids: [7]}
  allowLoopback: false
  egress:
    - to: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
      ports: [{port: 443}]
    - to: [{cidr: 10.1.2.0/24}]
      ports: [{port: 80, protocol: tcp}]
)", "p.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  auto t = compile(*ps);
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_EQ(t->cidrs.size(), 3u);  // /8, /16 (nothing), /24 (port 80)
  for (const auto& e : t->cidrs) {
    if (e.prefix == 96 + 16) {
      EXPECT_EQ(e.ports.n, 0u);
    }
    if (e.prefix == 96 + 24) {
      ASSERT_EQ(e.ports.n, 1u);
      EXPECT_EQ(e.ports.r[0].first, 80);
      EXPECT_EQ(e.ports.r[0].protos, VIGIL_EG_PROTO_TCP);
      EXPECT_EQ(e.ports.r[0].rule, 1);
    }
  }
  Subject who{"/bin/x", 7, "/"};
  auto judge = [&](const char* dst, Proto proto = Proto::kTcp) {
    auto d = parse_destination(dst, proto);
    return t->judge(who, *d).outcome;
  };
  EXPECT_EQ(judge("10.9.9.9:443"), Outcome::kAllow);
  EXPECT_EQ(judge("10.1.9.9:443"), Outcome::kWouldDeny);
  EXPECT_EQ(judge("10.1.2.3:80"), Outcome::kAllow);
  EXPECT_EQ(judge("10.1.2.3:80", Proto::kUdp), Outcome::kWouldDeny);
  EXPECT_EQ(judge("[::ffff:10.9.9.9]:443"), Outcome::kAllow);
  EXPECT_EQ(t->judge({"/bin/x", 8, "/"}, *parse_destination("10.1.9.9:1", Proto::kTcp)).outcome,
            Outcome::kUnrestricted);
}

TEST(PolicyCompiler, LimitsAreErrorsThatNameThePolicy) {
  std::string many = "apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata: {name: ports}\nspec:\n"
                     "  selector: {uids: [1]}\n  egress:\n    - to: [{cidr: 10.0.0.0/8}]\n      ports:\n";
  for (int p = 1; p <= VIGIL_EG_PORT_RANGES + 1; ++p) many += fmt::format("        - {{port: {}}}\n", p * 10);
  auto ps = load_policies(many, "ports.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  auto t = compile(*ps);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("policy 'ports'"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("10.0.0.0/8"), std::string::npos) << t.error().message;

  std::vector<EgressPolicy> lots(VIGIL_EG_MAX_POLICIES + 1);
  for (size_t i = 0; i < lots.size(); ++i) lots[i].name = fmt::format("p{}", i);
  auto t2 = compile(lots);
  ASSERT_FALSE(t2);
  EXPECT_NE(t2.error().message.find("at most 64"), std::string::npos);
}

// Random policies over a small address space, judged both ways.
TEST(PolicyCompiler, TablesAgreeWithTheReferenceEvaluator) {
  std::mt19937 rng(42);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  auto cidr = [&] {
    int len = 24 + pick(9);
    return fmt::format("10.0.{}.{}/{}", pick(4), pick(256) & ~((1 << (32 - len)) - 1) & 255, len);
  };
  for (int round = 0; round < 200; ++round) {
    std::string yaml;
    int npol = 1 + pick(3);
    for (int p = 0; p < npol; ++p) {
      yaml += fmt::format("---\napiVersion: vigil/v1\nkind: EgressPolicy\nmetadata: {{name: p{}}}\nspec:\n"
                          "  mode: {}\n  selector: {{uids: [{}]}}\n  allowLoopback: {}\n  egress:{}\n",
                          p, pick(2) ? "enforce" : "audit", pick(2), pick(2) ? "true" : "false",
                          "");
      int nrules = pick(4);
      if (nrules == 0) yaml.insert(yaml.size() - 1, " []");
      for (int r = 0; r < nrules; ++r) {
        yaml += "    - to:\n";
        int npeers = 1 + pick(2);
        for (int k = 0; k < npeers; ++k) {
          if (pick(5) == 0) {
            yaml += fmt::format("        - fqdn: \"{}\"\n", pick(2) ? "*.a.test" : "b.a.test");
            continue;
          }
          std::string c = cidr();
          auto parsed = parse_cidr(c);
          yaml += fmt::format("        - cidr: {}\n", c);
          if (pick(3) == 0 && parsed->prefix < 128) {
            // An except inside the cidr: one more bit, either half.
            auto e = *parsed;
            e.prefix += 1;
            if (pick(2)) e.addr[(e.prefix - 1) / 8] |= static_cast<uint8_t>(0x80 >> ((e.prefix - 1) % 8));
            char buf[32];
            snprintf(buf, sizeof(buf), "%d.%d.%d.%d/%d", e.addr[12], e.addr[13], e.addr[14], e.addr[15],
                     e.prefix - 96);
            yaml += fmt::format("          except: [{}]\n", buf);
          }
        }
        if (pick(3)) {
          int lo = 1 + pick(100);
          yaml += fmt::format("      ports: [{{port: {}, endPort: {}{}}}]\n", lo, lo + pick(50),
                              pick(2) ? ", protocol: tcp" : "");
        }
      }
    }
    auto ps = load_policies(yaml, "rand.yaml");
    ASSERT_TRUE(ps) << ps.error().message << "\n" << yaml;
    auto t = compile(*ps);
    ASSERT_TRUE(t) << t.error().message;
    Evaluator ref(*ps);
    for (int q = 0; q < 50; ++q) {
      Subject who{"/bin/x", static_cast<uint32_t>(pick(2)), "/"};
      auto d = parse_destination(fmt::format("10.0.{}.{}:{}", pick(4), pick(256), 1 + pick(160)),
                                 pick(2) ? Proto::kTcp : Proto::kUdp);
      ASSERT_TRUE(d);
      if (pick(3) == 0) d->fqdns = {pick(2) ? "x.a.test" : "b.a.test"};
      Verdict a = ref.evaluate(who, *d), b = t->judge(who, *d);
      ASSERT_EQ(outcome_name(a.outcome), std::string(outcome_name(b.outcome))) << yaml;
      // Which of several allowing policies is named may differ (the kernel tries
      // every policy's CIDRs before any FQDN); a deny names the same one.
      if (a.outcome != Outcome::kAllow) {
        ASSERT_EQ(a.policy, b.policy) << yaml;
      }
    }
  }
}

TEST(PolicyCompiler, KernelTablesCarryMasksAndPrefixLengths) {
  auto ps = load_policies(R"(apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: a}
spec:
  mode: enforce
  selector: {binaries: [/usr/bin/curl], uids: [0]}
  allowLoopback: false
  egress:
    - to: [{cidr: 192.0.2.0/24}, {fqdn: "*.example.com"}]
---
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: b}
spec:
  selector: {cgroups: [/x]}
  egress: []
)", "k.yaml");
  ASSERT_TRUE(ps);
  auto t = compile(*ps);
  ASSERT_TRUE(t);
  EgressTables k = kernel_tables(*t, {});
  EXPECT_EQ(k.gen.active, 3u);
  EXPECT_EQ(k.gen.enforce, 1u);
  EXPECT_EQ(k.gen.any_bin, 2u);
  EXPECT_EQ(k.gen.any_cgroup, 1u);
  EXPECT_EQ(k.gen.any_uid, 2u);
  ASSERT_EQ(k.fqdns.size(), 1u);
  EXPECT_EQ(k.fqdns[0].first, name_hash(".example.com"));
  EXPECT_EQ(k.fqdns[0].second, 1u);
  bool saw24 = false;
  for (const auto& [key, ports] : k.cidrs)
    if (key.policy == 0 && key.prefixlen == 32 + 96 + 24) saw24 = key.addr[12] == 192 && key.addr[14] == 2;
  EXPECT_TRUE(saw24);
}

TEST(PolicyCompiler, SelectorsResolveBinariesByInodeAndCgroupsByDirectory) {
  fs::path root = fs::temp_directory_path() / fmt::format("vigil-sel-{}", getpid());
  fs::create_directories(root / "cg/app.slice/web.service");
  fs::create_directories(root / "cg/other");
  fs::create_directories(root / "proc");
  fs::create_directories(root / "bin");
  std::ofstream(root / "bin/tool") << "#!/bin/sh\n";
  auto ps = load_policies(fmt::format(R"(apiVersion: vigil/v1
kind: EgressPolicy
metadata: {{name: s}}
spec:
  selector: {{binaries: ["{}/bin/to*"], cgroups: ["/app.slice/*"], uids: [5, 6]}}
  egress: []
)", root.string()), "s.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  auto t = compile(*ps);
  ASSERT_TRUE(t);
  EgressSelectors sel = resolve_selectors(*t, (root / "cg").string(), (root / "proc").string());
  struct stat st {};
  ASSERT_EQ(stat((root / "bin/tool").c_str(), &st), 0);
  ASSERT_EQ(sel.bins.size(), 1u);
  EXPECT_EQ(sel.bins[0].first.ino, st.st_ino);
  EXPECT_EQ(sel.bins[0].first.dev, kernel_dev(st.st_dev));
  ASSERT_EQ(stat((root / "cg/app.slice/web.service").c_str(), &st), 0);
  ASSERT_EQ(sel.cgroups.size(), 1u);
  EXPECT_EQ(sel.cgroups[0].first.cgroup_id, st.st_ino);
  EXPECT_EQ(sel.uids.size(), 2u);
  fs::remove_all(root);
}

TEST(PolicyCompiler, PodSelectorsResolveToThePodsCgroupAndAnyCgroupMaskExcludesThem) {
  fs::path root = fs::temp_directory_path() / fmt::format("vigil-podsel-{}", getpid());
  fs::create_directories(root / "cg/kubepods/besteffort/podA/c1");
  fs::create_directories(root / "cg/kubepods/besteffort/podB/c2");
  auto ps = load_policies(R"(apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: api}
spec:
  selector: {pods: {namespace: shop, matchLabels: {app: api}}}
  egress: []
)", "p.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  auto t = compile(*ps);
  ASSERT_TRUE(t);
  std::vector<std::string> asked;
  // agent/policy answers for the pod cache; here podA is the selected pod.
  EgressSelectors sel = resolve_selectors(*t, (root / "cg").string(), (root / "proc").string(),
                                          [&](const std::string& rel) -> uint64_t {
                                            asked.push_back(rel);
                                            return rel.ends_with("/podA") ? 1 : 0;
                                          });
  struct stat st {};
  ASSERT_EQ(stat((root / "cg/kubepods/besteffort/podA").c_str(), &st), 0);
  ASSERT_EQ(sel.cgroups.size(), 1u) << "the pod's cgroup; the kernel covers its containers";
  EXPECT_EQ(sel.cgroups[0].first.cgroup_id, st.st_ino);
  EXPECT_NE(std::find(asked.begin(), asked.end(), "/kubepods/besteffort/podB/c2"), asked.end());
  // Without a pod answer the policy selects nothing (not every cgroup).
  EXPECT_TRUE(resolve_selectors(*t, (root / "cg").string(), (root / "proc").string()).cgroups.empty());
  fs::remove_all(root);
}

}  // namespace
}  // namespace vigil::policy
