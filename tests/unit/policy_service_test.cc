// The policy service against a fake enforcer: what reaches the kernel, what a
// bad file changes (nothing), disable and apply, and verdicts as events.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/policy/service.h"

namespace vigil {
namespace {
namespace fs = std::filesystem;

// What the enforcers the service opened were asked to do.
struct FakeKernel {
  int opened = 0;
  int disabled = 0;
  std::vector<policy::EgressTables> applied;
};

class FakeEnforcer : public policy::Enforcer {
 public:
  explicit FakeEnforcer(FakeKernel& kernel) : kernel_(kernel) {}
  Status apply(policy::EgressTables tables) override {
    kernel_.applied.push_back(std::move(tables));
    gen_ ^= 1;
    return {};
  }
  Status disable() override {
    ++kernel_.disabled;
    return {};
  }
  bool adopted() const override { return false; }
  uint32_t active_generation() const override { return gen_; }
  std::string pin_dir() const override { return "/fake/pins"; }
  std::vector<std::string> program_names() const override { return {"eg_connect4", "eg_connect6"}; }
  int epoll_fd() const override { return -1; }
  Result<int> consume() override { return 0; }
  LostCounters lost_counters() const override { return {3, 4}; }

 private:
  FakeKernel& kernel_;
  uint32_t gen_ = 0;
};

std::string policy_yaml(const std::string& name, uint32_t uid) {
  return fmt::format(R"(apiVersion: vigil/v1
kind: EgressPolicy
metadata: {{name: {}}}
spec:
  mode: enforce
  selector: {{uids: [{}]}}
  allowLoopback: false
  egress:
    - to: [{{cidr: 127.0.0.2/32}}]
)", name, uid);
}

class PolicyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / fmt::format("vigil-policy-service-{}", getpid());
    fs::remove_all(root_);
    fs::create_directories(root_ / "policies");
    fs::create_directories(root_ / "cgroup");
    make();
  }
  void make(std::function<std::vector<std::string>(const policy::PodSelector&)> pod_uids = {}) {
    PolicyServiceOptions o{(root_ / "policies").string(), (root_ / "data").string(), (root_ / "pins").string(),
                           (root_ / "cgroup").string(), (root_ / "proc").string(), std::move(pod_uids)};
    service_ = std::make_unique<PolicyService>(
        o,
        [this](policy::Enforcer::Handler on_verdict) -> Result<std::unique_ptr<policy::Enforcer>> {
          ++kernel_.opened;
          on_verdict_ = std::move(on_verdict);
          return std::unique_ptr<policy::Enforcer>(new FakeEnforcer(kernel_));
        },
        [this](Event&& e) { events_.push_back(std::move(e)); },
        [](const vigil_event_header& hdr) {
          ProcessRef p;
          p.pid = hdr.pid;
          p.comm = hdr.comm;
          return p;
        });
  }
  void TearDown() override {
    service_.reset();
    fs::remove_all(root_);
  }

  void write(const std::string& file, const std::string& text) {
    std::ofstream(root_ / "policies" / file) << text;
  }
  // "action name" of each policy event since the last call.
  std::vector<std::string> policy_events() {
    std::vector<std::string> out;
    for (const auto& e : events_)
      if (const auto* p = std::get_if<PolicyEvent>(&e.body)) out.push_back(p->action + " " + p->name);
    events_.clear();
    return out;
  }
  std::string state() const { return service_->status()["state"]; }

  fs::path root_;
  FakeKernel kernel_;
  policy::Enforcer::Handler on_verdict_;
  std::vector<Event> events_;
  std::unique_ptr<PolicyService> service_;
};

TEST_F(PolicyServiceTest, StartAppliesEveryFileToTheKernel) {
  write("a.yaml", policy_yaml("pol-a", 1001));
  write("b.yml", policy_yaml("pol-b", 1002));
  write(".hidden.yaml", "not even YAML: [");
  write("notes.txt", "ignored");
  ASSERT_TRUE(service_->start());
  EXPECT_EQ(kernel_.opened, 1);
  ASSERT_EQ(kernel_.applied.size(), 1u);
  const auto& t = kernel_.applied[0];
  EXPECT_EQ(t.gen.active, 3u);
  EXPECT_EQ(t.gen.enforce, 3u);
  EXPECT_EQ(t.selectors.uids.size(), 2u);
  EXPECT_EQ(policy_events(), (std::vector<std::string>{"loaded pol-a", "loaded pol-b"}));
  EXPECT_EQ(state(), "enforcing");
  EXPECT_EQ(service_->status()["policies"], 2);
  EXPECT_EQ(service_->status()["lost_verdicts"], 3);
}

TEST_F(PolicyServiceTest, NothingToEnforceOpensNoEnforcer) {
  ASSERT_TRUE(service_->start());
  EXPECT_EQ(kernel_.opened, 0);
  EXPECT_EQ(state(), "idle");
  EXPECT_EQ(service_->epoll_fd(), -1);
}

TEST_F(PolicyServiceTest, ReloadKeepsTheLastGoodVersionOfARejectedFile) {
  write("a.yaml", policy_yaml("pol-a", 1001));
  ASSERT_TRUE(service_->start());
  policy_events();
  write("a.yaml", "apiVersion: vigil/v1\nkind: EgressPolicy\nspec: [\n");
  service_->reload(ReloadReason::kDirChanged);
  ASSERT_EQ(events_.size(), 1u);
  const auto& rejected = std::get<PolicyEvent>(events_[0].body);
  EXPECT_EQ(rejected.action, "rejected");
  EXPECT_EQ(rejected.name, "a.yaml");
  ASSERT_TRUE(rejected.error);
  EXPECT_NE(rejected.error->find((root_ / "policies" / "a.yaml").string()), std::string::npos) << *rejected.error;
  events_.clear();
  EXPECT_EQ(kernel_.applied.size(), 1u) << "the kernel keeps the last good tables";
  auto listed = service_->list()["policies"];
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["name"], "pol-a");
  EXPECT_EQ(state(), "enforcing");

  write("a.yaml", policy_yaml("pol-a2", 1001));  // mended
  service_->reload(ReloadReason::kDirChanged);
  EXPECT_EQ(policy_events(), (std::vector<std::string>{"loaded pol-a2", "removed pol-a"}));
  EXPECT_EQ(kernel_.applied.size(), 2u);
}

TEST_F(PolicyServiceTest, ARejectedFileAtStartLeavesTheOthersEnforcing) {
  write("a.yaml", policy_yaml("pol-a", 1001));
  write("b.yaml", "apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata: {name: pol-b}\nspec: {mode: sometimes}\n");
  ASSERT_TRUE(service_->start());
  EXPECT_EQ(policy_events(), (std::vector<std::string>{"rejected b.yaml", "loaded pol-a"}));
  ASSERT_EQ(kernel_.applied.size(), 1u);
  EXPECT_EQ(kernel_.applied[0].gen.active, 1u);
}

TEST_F(PolicyServiceTest, ANameDefinedInTwoFilesRejectsTheNewSet) {
  write("a.yaml", policy_yaml("pol-x", 1001));
  ASSERT_TRUE(service_->start());
  policy_events();
  write("b.yaml", policy_yaml("pol-x", 1002));
  service_->reload(ReloadReason::kDirChanged);
  ASSERT_EQ(events_.size(), 1u);
  const auto& e = std::get<PolicyEvent>(events_[0].body);
  EXPECT_EQ(e.action, "rejected");
  EXPECT_NE(e.error->find("policy 'pol-x' is already defined in"), std::string::npos) << *e.error;
  EXPECT_EQ(kernel_.applied.size(), 1u);
}

TEST_F(PolicyServiceTest, DisableHoldsAcrossReloadsUntilTheNextApply) {
  write("a.yaml", policy_yaml("pol-a", 1001));
  ASSERT_TRUE(service_->start());
  policy_events();
  ASSERT_TRUE(service_->disable());
  EXPECT_EQ(kernel_.disabled, 1);
  EXPECT_EQ(state(), "disabled");
  EXPECT_TRUE(fs::exists(root_ / "data" / "egress-disabled"));
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(std::get<PolicyEvent>(events_[0].body).error, "enforcement disabled");
  events_.clear();

  service_->reload(ReloadReason::kSignal);
  EXPECT_EQ(kernel_.opened, 1) << "a disabled service does not enforce again on reload";
  EXPECT_EQ(state(), "disabled");

  // Applying the very same file turns enforcement back on.
  auto applied = service_->apply("a.yaml", policy_yaml("pol-a", 1001));
  ASSERT_TRUE(applied) << applied.error().message;
  EXPECT_FALSE(fs::exists(root_ / "data" / "egress-disabled"));
  EXPECT_EQ(kernel_.opened, 2);
  EXPECT_EQ(state(), "enforcing");
  EXPECT_EQ(kernel_.applied.size(), 2u);
}

TEST_F(PolicyServiceTest, ApplyValidatesBeforeAnythingChanges) {
  write("a.yaml", policy_yaml("pol-a", 1001));
  ASSERT_TRUE(service_->start());
  auto bad = service_->apply("bad.yaml", "apiVersion: vigil/v1\nkind: Nonsense\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("bad.yaml"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(fs::exists(root_ / "policies" / "bad.yaml"));
  auto dup = service_->apply("c", policy_yaml("pol-a", 1003));
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("already defined"), std::string::npos) << dup.error().message;
  EXPECT_FALSE(fs::exists(root_ / "policies" / "c.yaml"));
  EXPECT_EQ(kernel_.applied.size(), 1u);

  auto ok = service_->apply("/elsewhere/c", policy_yaml("pol-c", 1003));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->policies, std::vector<std::string>{"pol-c"});
  EXPECT_EQ(ok->file, (root_ / "policies" / "c.yaml").string()) << "installed by its base name";
  EXPECT_TRUE(fs::exists(root_ / "policies" / "c.yaml"));
  EXPECT_EQ(kernel_.applied.back().gen.active, 3u);
}

TEST_F(PolicyServiceTest, VerdictsBecomeEgressEventsAndRepeatedAllowsAreAggregated) {
  write("a.yaml", policy_yaml("pol-a", 1001));
  ASSERT_TRUE(service_->start());
  ASSERT_TRUE(on_verdict_);
  events_.clear();
  vigil_eg_event ev{};
  ev.hdr.type = VIGIL_EV_EGRESS;
  ev.hdr.pid = 77;
  std::strcpy(ev.hdr.comm, "curl");
  ev.verdict = VIGIL_EG_ALLOW;
  ev.gen = 1;
  ev.policy = 0;
  ev.proto = 6;
  ev.rule = 0;
  ev.port = 443;
  ev.addr[10] = ev.addr[11] = 0xff;
  ev.addr[12] = 127;
  ev.addr[15] = 2;
  on_verdict_(ev);
  on_verdict_(ev);  // the same flow again: aggregated
  ev.verdict = VIGIL_EG_DENY;
  ev.rule = VIGIL_EG_RULE_NONE;
  ev.addr[15] = 3;
  on_verdict_(ev);
  ASSERT_EQ(events_.size(), 2u);
  const auto& allow = std::get<EgressEvent>(events_[0].body);
  EXPECT_EQ(allow.verdict, "allow");
  EXPECT_EQ(allow.policy, "pol-a");
  EXPECT_EQ(allow.mode, "enforce");
  EXPECT_EQ(allow.rule, "egress[0]");
  EXPECT_EQ(allow.dst.addr, "127.0.0.2");
  EXPECT_EQ(allow.dst.port, 443);
  EXPECT_EQ(events_[0].process->pid, 77u);
  EXPECT_EQ(events_[0].process->comm, "curl");
  const auto& deny = std::get<EgressEvent>(events_[1].body);
  EXPECT_EQ(deny.verdict, "deny");
  EXPECT_EQ(deny.rule, "");
  EXPECT_EQ(deny.dst.addr, "127.0.0.3");
  EXPECT_EQ(service_->status()["allows_aggregated"], 1);
  EXPECT_EQ(service_->status()["verdicts"], 3);
}

// Security review F13: a user names a cgroup of their delegated subtree after a
// pod ("pod<uid>"): its processes were selected by that pod's policy, whose
// allows add to their own (a union).
TEST_F(PolicyServiceTest, SecurityF13APodNameOutsideTheKubeletsCgroupsSelectsNothing) {
  const std::string uid = "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8";
  make([&](const policy::PodSelector&) { return std::vector<std::string>{uid}; });
  fs::path real = root_ / "cgroup" / "kubepods.slice" / "kubepods-besteffort.slice" /
                  "kubepods-besteffort-pod7f1c2a3b_4d5e_6f70_8192_a3b4c5d6e7f8.slice";
  fs::path fake = root_ / "cgroup" / "user.slice" / "user-1000.slice" / "user@1000.service" / "app.slice" /
                  ("pod" + uid);
  fs::path loose = root_ / "cgroup" / "system.slice" / ("pod" + uid);
  for (const auto& d : {real, fake, loose}) fs::create_directories(d);
  write("pod.yaml", R"(apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: pod-policy}
spec:
  mode: enforce
  selector: {pods: {namespace: shop, matchLabels: {app: api}}}
  egress:
    - to: [{cidr: 127.0.0.2/32}]
)");
  ASSERT_TRUE(service_->start());
  ASSERT_FALSE(kernel_.applied.empty());
  std::vector<uint64_t> selected;
  for (const auto& [k, mask] : kernel_.applied.back().selectors.cgroups) selected.push_back(k.cgroup_id);
  auto ino = [](const fs::path& p) {
    struct stat st {};
    stat(p.c_str(), &st);
    return static_cast<uint64_t>(st.st_ino);
  };
  EXPECT_EQ(selected, std::vector<uint64_t>{ino(real)});
}

}  // namespace
}  // namespace vigil
