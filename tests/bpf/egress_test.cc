// Kernel tier: egress enforcement with the real cgroup programs. Each probe
// runs in a child cgroup this test creates (so only it is ever restricted),
// connects to loopback addresses only, and its exit code says what the kernel
// decided (see egress_probe.cc).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/file.h"
#include "collectors/host/cgroup.h"
#include "collectors/kernel/egress_enforcer.h"
#include "collectors/kernel/system.h"
#include "policy/compiler.h"
#include "policy/loader.h"
#include "policy/pins.h"
#include "policy/resolve.h"
#include "tests/bpf/bpf_test_util.h"

namespace vigil {
namespace {
namespace fs = std::filesystem;
using testing_util::spawn;
using testing_util::wait_exit;

constexpr int kConnected = 0, kDenied = 3, kRefused = 4;

class EgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) SKIP_OR_FAIL("not root: the kernel tier needs root to load BPF programs");
    route_libbpf_logs(false);
    if (auto s = ensure_kernel_mounts(); !s) SKIP_OR_FAIL(s.error().message);
    auto mount = find_cgroup2_mount(read_small_file("/proc/self/mountinfo"));
    if (!mount) SKIP_OR_FAIL(mount.error().message);
    cgroup_root_ = *mount;
    std::string tag = std::to_string(getpid());
    cgroup_rel_ = "/vigil-egress-test-" + tag;
    fs::create_directories(cgroup_root_ + cgroup_rel_);
    pin_root_ = "/sys/fs/bpf/vigil-egress-test-" + tag;
    auto e = open_enforcer();
    ASSERT_TRUE(e) << e.error().message;
    enforcer_ = std::move(*e);
  }

  void TearDown() override {
    if (enforcer_) {
      EXPECT_TRUE(enforcer_->disable());
    }
    enforcer_.reset();
    (void)policy::EgressPins(pin_root_, "").remove();
    rmdir(pin_root_.c_str());
    if (!cgroup_rel_.empty()) rmdir((cgroup_root_ + cgroup_rel_).c_str());
  }

  Result<std::unique_ptr<EgressEnforcer>> open_enforcer() {
    EgressOptions o{pin_root_, cgroup_root_, {53}, 1};
    return EgressEnforcer::open(o, [this](const vigil_eg_event& ev) { events_.push_back(ev); });
  }

  // Applies policy YAML; "CGROUP" in it stands for this test's cgroup.
  void apply(std::string yaml) {
    for (size_t at; (at = yaml.find("CGROUP")) != std::string::npos;) yaml.replace(at, 6, cgroup_rel_);
    auto ps = policy::load_policies(yaml, "test.yaml");
    ASSERT_TRUE(ps) << ps.error().message;
    auto t = policy::compile(*ps);
    ASSERT_TRUE(t) << t.error().message;
    tables_ = *t;
    ASSERT_TRUE(enforcer_->apply(policy::kernel_tables(tables_, policy::resolve_selectors(tables_, cgroup_root_))));
  }

  int probe(const std::string& mode, const std::string& addr, int port, std::vector<std::string> extra = {},
            bool in_cgroup = true) {
    std::vector<std::string> argv = {VIGIL_EGRESS_PROBE, mode, addr, std::to_string(port)};
    if (in_cgroup) argv.insert(argv.end(), {"--cgroup", cgroup_root_ + cgroup_rel_});
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_t pid = spawn(argv);
    return pid < 0 ? -1 : wait_exit(pid);
  }

  std::vector<vigil_eg_event> drain() {
    (void)enforcer_->consume();
    auto out = std::move(events_);
    events_.clear();
    return out;
  }

  std::string cgroup_root_, cgroup_rel_, pin_root_;
  std::unique_ptr<EgressEnforcer> enforcer_;
  policy::Tables tables_;
  std::vector<vigil_eg_event> events_;
};

constexpr const char* kOnly127_0_0_2 = R"(
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: only-two}
spec:
  mode: enforce
  selector: {cgroups: ["CGROUP"]}
  allowLoopback: false
  egress:
    - to: [{cidr: 127.0.0.2/32}]
)";

TEST_F(EgressTest, AllowedAndDeniedLoopbackAddressesWithEvents) {
  apply(kOnly127_0_0_2);
  drain();
  EXPECT_EQ(probe("tcp", "127.0.0.2", 9), kRefused);  // allowed: nobody listens
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9), kDenied);
  EXPECT_EQ(probe("tcp", "127.0.0.1", 9), kDenied);  // allowLoopback: false
  auto ev = drain();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].verdict, VIGIL_EG_ALLOW);
  EXPECT_EQ(ev[0].rule, 0);
  EXPECT_EQ(ev[0].port, 9);
  EXPECT_EQ(ev[0].addr[12], 127);
  EXPECT_EQ(ev[0].addr[15], 2);
  EXPECT_EQ(ev[1].verdict, VIGIL_EG_DENY);
  EXPECT_EQ(ev[1].rule, VIGIL_EG_RULE_NONE);
  EXPECT_EQ(ev[1].addr[15], 3);
  EXPECT_EQ(ev[1].proto, 6);
  EXPECT_EQ(std::string(ev[1].hdr.comm), "vigil_egress_pr");
  // The common process header: who connected, from where, when.
  struct stat cg {};
  ASSERT_EQ(stat((cgroup_root_ + cgroup_rel_).c_str(), &cg), 0);
  for (const auto& e : ev) {
    EXPECT_EQ(e.hdr.type, VIGIL_EV_EGRESS);
    EXPECT_GT(e.hdr.ts_ns, 0u);
    EXPECT_EQ(e.hdr.cgroup_id, cg.st_ino) << "the probe runs in the test's cgroup";
    EXPECT_EQ(e.hdr.ppid, static_cast<uint32_t>(getpid())) << "the probe is this test's child";
    EXPECT_EQ(e.hdr.tid, e.hdr.pid) << "the probe connects from its main thread";
    EXPECT_EQ(e.hdr.uid, geteuid());
    EXPECT_EQ(e.hdr.gid, getegid());
  }
  EXPECT_NE(ev[0].hdr.pid, ev[1].hdr.pid) << "one probe process per connect";
}

TEST_F(EgressTest, ProcessesOutsideTheSelectorAreUnrestricted) {
  apply(kOnly127_0_0_2);
  drain();
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9, {}, /*in_cgroup=*/false), kRefused);
  EXPECT_TRUE(drain().empty());
}

TEST_F(EgressTest, ChildCgroupsAreCovered) {
  apply(kOnly127_0_0_2);
  std::string child = cgroup_root_ + cgroup_rel_ + "/child";
  fs::create_directories(child);
  pid_t pid = spawn({VIGIL_EGRESS_PROBE, "tcp", "127.0.0.3", "9", "--cgroup", child});
  EXPECT_EQ(wait_exit(pid), kDenied);
  rmdir(child.c_str());
}

TEST_F(EgressTest, Ipv6LoopbackAndIpv4MappedDestinations) {
  apply(kOnly127_0_0_2);
  EXPECT_EQ(probe("tcp", "::1", 9), kDenied);
  EXPECT_EQ(probe("tcp", "::ffff:127.0.0.3", 9), kDenied);  // judged as 127.0.0.3
  EXPECT_EQ(probe("tcp", "::ffff:127.0.0.2", 9), kRefused);
  apply(R"(
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: loopback-ok}
spec:
  mode: enforce
  selector: {cgroups: ["CGROUP"]}
  egress: []
)");
  EXPECT_EQ(probe("tcp", "::1", 9), kRefused);  // allowLoopback defaults to true
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9), kRefused);
}

TEST_F(EgressTest, UdpSendtoAndConnectedUdpFollowPortsAndProtocol) {
  apply(R"(
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: udp}
spec:
  mode: enforce
  selector: {cgroups: ["CGROUP"]}
  allowLoopback: false
  egress:
    - to: [{cidr: 127.0.0.2/32}]
      ports: [{port: 5353, protocol: udp}]
)");
  EXPECT_EQ(probe("udp-sendto", "127.0.0.2", 5353), kConnected);
  EXPECT_EQ(probe("udp-sendto", "127.0.0.2", 5354), kDenied);
  EXPECT_EQ(probe("udp-connect", "127.0.0.2", 5353), kConnected);
  EXPECT_EQ(probe("tcp", "127.0.0.2", 5353), kDenied);  // udp only
  auto ev = drain();
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev[1].verdict, VIGIL_EG_DENY);
  EXPECT_EQ(ev[1].proto, 17);
}

TEST_F(EgressTest, PortRangesAndExcept) {
  apply(R"(
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: ranges}
spec:
  mode: enforce
  selector: {cgroups: ["CGROUP"]}
  allowLoopback: false
  egress:
    - to: [{cidr: 127.0.0.0/8, except: [127.0.0.3/32]}]
      ports: [{port: 8000, endPort: 8100}]
    - to: [{cidr: 127.0.0.3/32}]
      ports: [{port: 9000}]
)");
  EXPECT_EQ(probe("tcp", "127.0.0.2", 8000), kRefused);
  EXPECT_EQ(probe("tcp", "127.0.0.2", 8100), kRefused);
  EXPECT_EQ(probe("tcp", "127.0.0.2", 8101), kDenied);
  EXPECT_EQ(probe("tcp", "127.0.0.3", 8050), kDenied);  // excepted
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9000), kRefused);  // but another rule allows this port
}

TEST_F(EgressTest, AuditModeAllowsAndReportsWouldDeny) {
  std::string yaml = kOnly127_0_0_2;
  yaml.replace(yaml.find("mode: enforce"), 13, "mode: audit");
  apply(yaml);
  drain();
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9), kRefused);
  auto ev = drain();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].verdict, VIGIL_EG_WOULD_DENY);
}

TEST_F(EgressTest, BinaryAndUidSelectorsMustAllMatch) {
  // A copy of the probe is another executable (another inode): not selected.
  std::string copy = "/tmp/vigil-egress-probe-copy-" + std::to_string(getpid());
  fs::copy_file(VIGIL_EGRESS_PROBE, copy, fs::copy_options::overwrite_existing);
  chmod(copy.c_str(), 0755);
  apply(std::string(R"(
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: bin-uid}
spec:
  mode: enforce
  selector:
    binaries: [")") + VIGIL_EGRESS_PROBE + R"("]
    uids: [65534]
  allowLoopback: false
  egress: []
)");
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9, {"--uid", "65534"}, false), kDenied);
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9, {}, false), kRefused);  // uid 0: not selected
  pid_t pid = spawn({copy, "tcp", "127.0.0.3", "9", "--uid", "65534"});
  EXPECT_EQ(wait_exit(pid), kRefused);
  fs::remove(copy);
}

TEST_F(EgressTest, PinnedStateKeepsEnforcingAndIsAdopted) {
  apply(kOnly127_0_0_2);
  enforcer_.reset();  // the agent goes away without disabling
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9), kDenied);
  auto again = open_enforcer();
  ASSERT_TRUE(again) << again.error().message;
  enforcer_ = std::move(*again);
  EXPECT_TRUE(enforcer_->adopted());
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9), kDenied);  // still, before any apply
  ASSERT_TRUE(enforcer_->disable());
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9), kRefused);
  EXPECT_FALSE(fs::exists(enforcer_->pin_dir()));
  enforcer_.reset();
}

TEST_F(EgressTest, ReloadSwitchesGenerations) {
  apply(kOnly127_0_0_2);
  uint32_t g = enforcer_->active_generation();
  std::string yaml = kOnly127_0_0_2;
  yaml.replace(yaml.find("127.0.0.2/32"), 12, "127.0.0.3/32");
  apply(yaml);
  EXPECT_NE(enforcer_->active_generation(), g);
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9), kRefused);
  EXPECT_EQ(probe("tcp", "127.0.0.2", 9), kDenied);
}

TEST_F(EgressTest, KernelAgreesWithPolicyTest) {
  // `vigil policy test` answers from Tables::judge: check it against the kernel.
  apply(R"(
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: mixed}
spec:
  mode: enforce
  selector: {cgroups: ["CGROUP"]}
  allowLoopback: false
  egress:
    - to: [{cidr: 127.0.0.0/30, except: [127.0.0.2/31]}]
      ports: [{port: 80}, {port: 443, protocol: tcp}]
    - to: [{cidr: 127.0.0.3/32}]
      ports: [{port: 8000, endPort: 8002, protocol: udp}]
)");
  policy::Subject who{"/x", 0, cgroup_rel_};
  for (const char* addr : {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}) {
    for (int port : {80, 443, 8001, 9}) {
      for (const char* mode : {"tcp", "udp-sendto"}) {
        auto dst = policy::parse_destination(fmt::format("{}:{}", addr, port),
                                             std::string(mode) == "tcp" ? policy::Proto::kTcp : policy::Proto::kUdp);
        ASSERT_TRUE(dst);
        bool allowed = tables_.judge(who, *dst).outcome == policy::Outcome::kAllow;
        int rc = probe(mode, addr, port);
        EXPECT_EQ(rc == kDenied, !allowed) << mode << " " << addr << ":" << port << " rc " << rc;
      }
    }
  }
}

// ---- security review F7: DNS answers learnt only for queries this host sent ----

std::string dns_name(std::string_view n) {
  std::string out;
  for (size_t start = 0; start <= n.size();) {
    size_t dot = n.find('.', start);
    if (dot == std::string_view::npos) dot = n.size();
    out += static_cast<char>(dot - start);
    out.append(n.substr(start, dot - start));
    start = dot + 1;
  }
  return out + '\0';
}

std::string dns_header(uint16_t id, uint16_t flags, uint16_t an) {
  std::string h;
  for (uint16_t v : {id, flags, uint16_t{1}, an, uint16_t{0}, uint16_t{0}}) {
    h += static_cast<char>(v >> 8);
    h += static_cast<char>(v & 0xff);
  }
  return h;
}

std::string dns_query(uint16_t id, std::string_view name) {
  return dns_header(id, 0x0100, 0) + dns_name(name) + std::string("\0\1\0\1", 4);
}

std::string dns_answer(uint16_t id, std::string_view name, const char* ip4) {
  std::string a = dns_header(id, 0x8180, 1) + dns_name(name) + std::string("\0\1\0\1", 4);
  a += std::string("\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4", 12);  // name at 12, A, IN, TTL 60, 4 bytes
  in_addr addr{};
  inet_pton(AF_INET, ip4, &addr);
  a.append(reinterpret_cast<const char*>(&addr), 4);
  return a;
}

// A UDP socket bound to addr:port (0: any port).
int udp_bound(const char* addr, uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, addr, &a.sin_addr);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

sockaddr_in name_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return a;
}

// `from` sends `msg` to `to`; `to` reads it (the ingress program ran by then).
bool deliver(int from, int to, const std::string& msg) {
  sockaddr_in dst = name_of(to);
  if (sendto(from, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst) < 0) return false;
  char buf[512];
  return recv(to, buf, sizeof buf, 0) == static_cast<ssize_t>(msg.size());
}

constexpr const char* kByName = R"(
apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: by-name}
spec:
  mode: enforce
  selector: {cgroups: ["CGROUP"]}
  allowLoopback: false
  egress:
    - to: [{fqdn: api.test}, {fqdn: other.test}]
)";

// Any UDP datagram from port 53 used to teach the whole host: a forged answer
// (no query), an answer with another id, from another server, or one seen in a
// user's own network namespace let a confined process reach the address.
TEST_F(EgressTest, SecurityF7OnlyAnswersToThisNamespacesQueriesAreLearnt) {
  apply(kByName);
  int srv = udp_bound("127.0.84.1", 53), other = udp_bound("127.0.84.2", 53), cli = udp_bound("127.0.0.1", 0);
  ASSERT_GE(srv, 0) << "bind 127.0.84.1:53: " << strerror(errno);
  ASSERT_GE(other, 0);
  auto unsolicited = [&] { return enforcer_->lost_counters()[VIGIL_EG_DNS_UNSOLICITED]; };
  uint64_t before = unsolicited();
  // A forged answer, no query at all.
  ASSERT_TRUE(deliver(srv, cli, dns_answer(0x1111, "api.test", "127.0.0.2")));
  EXPECT_EQ(probe("tcp", "127.0.0.2", 9), kDenied);
  // A query; then answers with the wrong id and from another server.
  ASSERT_TRUE(deliver(cli, srv, dns_query(0x2222, "api.test")));
  ASSERT_TRUE(deliver(srv, cli, dns_answer(0x3333, "api.test", "127.0.0.2")));
  ASSERT_TRUE(deliver(other, cli, dns_answer(0x2222, "api.test", "127.0.0.2")));
  ASSERT_TRUE(deliver(srv, cli, dns_answer(0x2222, "other.test", "127.0.0.2")));  // another question
  EXPECT_EQ(probe("tcp", "127.0.0.2", 9), kDenied);
  EXPECT_EQ(unsolicited() - before, 4u);
  // The answer itself: learnt, once.
  ASSERT_TRUE(deliver(srv, cli, dns_answer(0x2222, "api.test", "127.0.0.2")));
  EXPECT_EQ(probe("tcp", "127.0.0.2", 9), kRefused);  // allowed: nobody listens
  ASSERT_TRUE(deliver(srv, cli, dns_answer(0x2222, "api.test", "127.0.0.3")));  // a replay
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9), kDenied);
  close(srv), close(other), close(cli);

  // A user's own network namespace, its own resolver: query and answer match
  // there (not counted as unsolicited), and teach that namespace only.
  before = unsolicited();
  pid_t child = fork();
  if (child == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(10);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) _exit(11);
    int nsrv = udp_bound("127.0.0.1", 53), ncli = udp_bound("127.0.0.1", 0);
    if (nsrv < 0 || ncli < 0) _exit(12);
    if (!deliver(ncli, nsrv, dns_query(0x4444, "other.test"))) _exit(13);
    if (!deliver(nsrv, ncli, dns_answer(0x4444, "other.test", "127.0.0.3"))) _exit(14);
    _exit(0);
  }
  ASSERT_EQ(wait_exit(child), 0);
  EXPECT_EQ(unsolicited(), before) << "the namespace's own answer matched its query";
  EXPECT_EQ(probe("tcp", "127.0.0.3", 9), kDenied) << "learnt in another network namespace";
}

// Security review F8: bpffs's root is 1777 when mounted without options; a user
// who made the pin directory first (before the first enforcement, after a
// reboot or a `policy disable`) stopped enforcement from ever starting.
TEST(SecurityF8, APinDirectoryPlantedByAUserDoesNotStopEnforcement) {
  if (geteuid() != 0) SKIP_OR_FAIL("not root: the kernel tier needs root to load BPF programs");
  route_libbpf_logs(false);
  if (auto s = ensure_kernel_mounts(); !s) SKIP_OR_FAIL(s.error().message);
  auto mount = find_cgroup2_mount(read_small_file("/proc/self/mountinfo"));
  if (!mount) SKIP_OR_FAIL(mount.error().message);
  std::string root = fmt::format("/sys/fs/bpf/vigil-sec-f8-{}", getpid());
  policy::EgressPins pins(root, "");
  // uid 65534 plants the layout's directory and a directory where eg_state is pinned.
  fs::create_directories(fs::path(pins.dir()) / "eg_state");
  for (const auto& p : {fs::path(root), fs::path(pins.dir()), fs::path(pins.dir()) / "eg_state"})
    ASSERT_EQ(chown(p.c_str(), 65534, 65534), 0) << p;
  struct stat bpffs {};
  ASSERT_EQ(stat("/sys/fs/bpf", &bpffs), 0);
  if (!(bpffs.st_mode & S_ISVTX) && (bpffs.st_mode & S_IWOTH)) FAIL() << "/sys/fs/bpf is world-writable, not sticky";
  auto e = EgressEnforcer::open(EgressOptions{root, *mount, {53}, 1}, [](const vigil_eg_event&) {});
  std::string aside = root + "-untrusted-uid65534";
  ASSERT_TRUE(e) << e.error().message;
  struct stat st {};
  ASSERT_EQ(lstat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(fs::exists(aside)) << "the user's tree is kept aside, not used";
  EXPECT_TRUE((*e)->disable());
  e->reset();
  (void)pins.remove();
  fs::remove_all(aside);
  rmdir(root.c_str());

  // vigild's own bpffs mount is root's alone (a scratch mount here).
  std::string scratch = fmt::format("/tmp/vigil-sec-f8-bpffs-{}", getpid());
  ASSERT_TRUE(mount_bpffs(scratch));
  ASSERT_EQ(stat(scratch.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(umount2(scratch.c_str(), 0), 0);
  rmdir(scratch.c_str());
}

// Security review F13: in a user namespace of their own (`unshare -Urm`) a user
// can mount any file at a selected binary's path; /proc/PID/exe then names that
// path, and the user's binary was selected by the policy too (a union of allows).
TEST(SecurityF13, ABinaryMountedAtASelectedPathInAUserNamespaceIsNotSelected) {
  if (geteuid() != 0) SKIP_OR_FAIL("not root: a user namespace with a uid map needs root here");
  fs::path tmp = fs::temp_directory_path() / fmt::format("vigil-sec-f13-{}", getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  fs::path target = tmp / "selected", evil = tmp / "evil";
  fs::copy_file("/bin/sleep", target);
  fs::copy_file("/bin/sleep", evil);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) _exit(10);
    std::ofstream("/proc/self/uid_map") << "0 0 1\n";
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(11);
    if (mount(evil.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(12);
    (void)!write(ready[1], "x", 1);
    execl(target.c_str(), "selected", "30", static_cast<char*>(nullptr));
    _exit(13);
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "the child could not set up its namespace";
  close(ready[0]);
  fs::path exe = fs::path("/proc") / std::to_string(child) / "exe";
  for (int i = 0; i < 200 && fs::read_symlink(exe).string() != target.string(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(fs::read_symlink(exe).string(), target.string());
  struct stat st_target {}, st_evil {};
  ASSERT_EQ(stat(target.c_str(), &st_target), 0);
  ASSERT_EQ(stat(evil.c_str(), &st_evil), 0);
  auto ps = policy::load_policies(fmt::format(R"(apiVersion: vigil/v1
kind: EgressPolicy
metadata: {{name: by-binary}}
spec:
  mode: enforce
  selector: {{binaries: ["{}"]}}
  egress:
    - to: [{{cidr: 127.0.0.2/32}}]
)", target.string()), "f13.yaml");
  ASSERT_TRUE(ps) << ps.error().message;
  auto t = policy::compile(*ps);
  ASSERT_TRUE(t) << t.error().message;
  policy::EgressSelectors sel = policy::resolve_selectors(*t, "", "/proc");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  bool has_target = false, has_evil = false;
  for (const auto& [k, mask] : sel.bins) {
    has_target |= k.ino == st_target.st_ino;
    has_evil |= k.ino == st_evil.st_ino;
  }
  EXPECT_TRUE(has_target);
  EXPECT_FALSE(has_evil) << "the user's own binary is selected by another binary's policy";
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace vigil
