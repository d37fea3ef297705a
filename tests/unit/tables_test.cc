// Process/connection tables and the kernel-event mapper, fed fabricated ABI
// records and a fake /proc: everything user space does with kernel facts.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/control/server.h"
#include "agent/events/event_mapper.h"
#include "collectors/kernel/observer.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / fmt::format("vigil_proc_{}", getpid());
    fs::remove_all(root_);
    add(100, 1, 1001, "nginx", "/usr/sbin/nginx",
        "0::/kubepods/besteffort/pod7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8/"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
    add(200, 100, 0, "curl", "/usr/bin/curl", "0::/user.slice\n");
    fs::create_directories(root_ / "self");  // not a pid: ignored
  }
  void TearDown() override { fs::remove_all(root_); }

  void add(uint32_t pid, uint32_t ppid, uint32_t uid, const std::string& comm,
           const std::string& exe, const std::string& cgroup) {
    fs::path d = root_ / std::to_string(pid);
    fs::create_directories(d);
    std::ofstream(d / "status") << "Name:\t" << comm << "\nPid:\t" << pid << "\nPPid:\t" << ppid
                                << "\nUid:\t" << uid << "\t" << uid << "\t" << uid << "\t" << uid
                                << "\n";
    std::ofstream(d / "comm") << comm << "\n";
    std::ofstream(d / "cgroup") << cgroup;
    fs::create_symlink(exe, d / "exe");
  }

  static vigil_event_header header(uint32_t type, uint32_t pid, const char* comm, uint64_t ts = 1000) {
    vigil_event_header h{};
    h.type = type;
    h.pid = pid;
    h.tid = pid;
    h.ppid = 1;
    h.ts_ns = ts;
    std::strncpy(h.comm, comm, sizeof(h.comm) - 1);
    return h;
  }

  fs::path root_;
};

TEST_F(FakeProc, SeedReadsEveryProcess) {
  ProcessTable t(root_.string(), nullptr);
  EXPECT_EQ(t.seed(), 2u);
  const ProcessInfo* p = t.find(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->ppid, 1u);
  EXPECT_EQ(p->uid, 1001u);
  EXPECT_EQ(p->comm, "nginx");
  EXPECT_EQ(p->exe, "/usr/sbin/nginx");
  EXPECT_EQ(p->container.pod_uid, "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8");
  EXPECT_EQ(p->container.container_id.size(), 64u);
  EXPECT_EQ(t.find(200)->cgroup, "/user.slice");
}

TEST_F(FakeProc, ForkInheritsThenExecReplacesThenExitForgetsAfterLinger) {
  ProcessTable t(root_.string(), nullptr);
  t.seed();
  vigil_fork_event f{};
  f.hdr = header(VIGIL_EV_FORK, 100, "nginx", 1000);
  f.child_pid = 300;
  t.on_fork(f);
  ASSERT_NE(t.find(300), nullptr);
  EXPECT_EQ(t.find(300)->exe, "/usr/sbin/nginx");
  EXPECT_EQ(t.find(300)->ppid, 100u);
  EXPECT_EQ(t.find(300)->container.pod_uid, "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8");

  vigil_exec_event x{};
  x.hdr = header(VIGIL_EV_EXEC, 300, "sh", 2000);
  std::strcpy(x.filename, "/bin/sh");
  x.filename_len = 7;
  t.on_exec(x);  // no /proc/300 here: the execve path is used
  EXPECT_EQ(t.find(300)->exe, "/bin/sh");
  EXPECT_EQ(t.find(300)->comm, "sh");

  vigil_exit_event e{};
  e.hdr = header(VIGIL_EV_EXIT, 300, "sh", 3000);
  t.on_exit(e, 100);
  EXPECT_NE(t.find(300), nullptr) << "still resolvable while it lingers";
  f.hdr.ts_ns = 3200;  // any later event purges
  f.child_pid = 301;
  t.on_fork(f);
  EXPECT_EQ(t.find(300), nullptr);
}

TEST_F(FakeProc, ResolveLoadsUnknownPidsAndKeepsKernelFactsForVanishedOnes) {
  ProcessTable t(root_.string(), nullptr);
  auto h = header(VIGIL_EV_CONN_OPEN, 200, "curl");
  EXPECT_EQ(t.resolve(h).exe, "/usr/bin/curl");
  auto gone = header(VIGIL_EV_CONN_OPEN, 999, "ghost");
  gone.uid = 5;
  const ProcessInfo& p = t.resolve(gone);
  EXPECT_EQ(p.comm, "ghost");
  EXPECT_EQ(p.uid, 5u);
  EXPECT_EQ(p.exe, "");
}

vigil_conn_event conn_event(uint32_t type, uint64_t id, uint32_t pid) {
  vigil_conn_event e{};
  e.hdr.type = type;
  e.hdr.pid = pid;
  e.hdr.tid = pid + 1;
  e.hdr.uid = 1001;
  e.hdr.ts_ns = 5'000'000'000ull;
  std::strcpy(e.hdr.comm, "nginx");
  e.conn_id = id;
  e.fd = 7;
  e.tuple.family = AF_INET6;
  e.tuple.proto = VIGIL_PROTO_TCP;
  e.tuple.role = VIGIL_ROLE_SERVER;
  inet_pton(AF_INET6, "::1", e.tuple.laddr);
  inet_pton(AF_INET6, "::1", e.tuple.raddr);
  e.tuple.lport = 8443;
  e.tuple.rport = 51000;
  return e;
}

TEST_F(FakeProc, MapperTurnsConnEventsIntoConnectionEvents) {
  ProcessTable procs(root_.string(), nullptr);
  procs.seed();
  ConnectionTable conns;
  BootClock clock;
  EventMapper mapper(procs, conns, clock, "node-a");
  std::vector<Event> out;
  auto emit = [&](Event&& e) { out.push_back(std::move(e)); };

  auto open = conn_event(VIGIL_EV_CONN_OPEN, 9, 100);
  mapper.handle(open, emit);
  EXPECT_EQ(conns.size(), 1u);
  auto close = conn_event(VIGIL_EV_CONN_CLOSE, 9, 100);
  close.bytes_sent = 10;
  close.bytes_recv = 20;
  mapper.handle(close, emit);
  EXPECT_EQ(conns.size(), 0u);

  ASSERT_EQ(out.size(), 2u);
  const auto& o = std::get<ConnectionEvent>(out[0].body);
  EXPECT_EQ(out[0].node, "node-a");
  EXPECT_EQ(out[0].time_ns, clock.to_wall_ns(5'000'000'000ull));
  EXPECT_EQ(out[0].process->pid, 100u);
  EXPECT_EQ(out[0].process->tid, 101u);
  EXPECT_EQ(out[0].process->exe, "/usr/sbin/nginx");
  EXPECT_EQ(out[0].process->pod_uid, "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8");
  EXPECT_EQ(o.state, "open");
  EXPECT_EQ(o.conn.id, 9u);
  EXPECT_EQ(o.conn.family, "ipv6");
  EXPECT_EQ(o.conn.proto, "tcp");
  EXPECT_EQ(o.conn.role, "server");
  EXPECT_EQ(o.conn.local.addr, "::1");
  EXPECT_EQ(o.conn.local.port, 8443);
  EXPECT_EQ(o.conn.remote.port, 51000);
  EXPECT_FALSE(o.bytes_sent.has_value());
  const auto& c = std::get<ConnectionEvent>(out[1].body);
  EXPECT_EQ(c.state, "close");
  EXPECT_EQ(c.bytes_sent, 10u);
  EXPECT_EQ(c.bytes_recv, 20u);
}

TEST_F(FakeProc, ExitForgetsConnectionsWhoseCloseWasLost) {
  ProcessTable procs(root_.string(), nullptr);
  ConnectionTable conns;
  BootClock clock;
  EventMapper mapper(procs, conns, clock, "n");
  std::vector<Event> out;
  auto emit = [&](Event&& e) { out.push_back(std::move(e)); };
  auto open = conn_event(VIGIL_EV_CONN_OPEN, 5, 100);
  mapper.handle(open, emit);
  auto other = conn_event(VIGIL_EV_CONN_OPEN, 6, 200);
  mapper.handle(other, emit);
  vigil_exit_event exit{};
  exit.hdr = header(VIGIL_EV_EXIT, 100, "nginx");
  mapper.handle(exit, emit);
  EXPECT_EQ(conns.find(5), nullptr);
  EXPECT_NE(conns.find(6), nullptr) << "another process's connection stays";
  EXPECT_EQ(mapper.http_stats().missed_closes, 1u);
}

TEST(Decode, ChecksSizeAgainstType) {
  vigil_conn_event e{};
  e.hdr.type = VIGIL_EV_CONN_OPEN;
  auto ok = decode_kernel_event({reinterpret_cast<const std::byte*>(&e), sizeof(e)});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(std::get<const vigil_conn_event*>(*ok), &e);
  auto short_rec = decode_kernel_event({reinterpret_cast<const std::byte*>(&e), sizeof(e) - 1});
  EXPECT_FALSE(short_rec.ok());
  auto no_hdr = decode_kernel_event({reinterpret_cast<const std::byte*>(&e), 8});
  EXPECT_FALSE(no_hdr.ok());
  e.hdr.type = 99;
  auto unknown = decode_kernel_event({reinterpret_cast<const std::byte*>(&e), sizeof(e)});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("unknown type 99"), std::string::npos);
}

TEST(TraceFilter, MatchesPidCommAndKinds) {
  Event e;
  ProcessRef proc;
  proc.pid = 5;
  proc.comm = "curl";
  e.process = std::make_shared<const ProcessRef>(proc);
  e.body = ConnectionEvent{};
  TraceFilter f;
  EXPECT_TRUE(f.matches(e));
  f.pid = 5;
  EXPECT_TRUE(f.matches(e));
  f.pid = 6;
  EXPECT_FALSE(f.matches(e));
  f.pid.reset();
  f.comm = "wget";
  EXPECT_FALSE(f.matches(e));
  f.comm = "curl";
  f.kinds = {"lost"};
  EXPECT_FALSE(f.matches(e));
  f.kinds = {"lost", "connection"};
  EXPECT_TRUE(f.matches(e));
  auto round = TraceFilter::from_json(f.to_json());
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->comm, "curl");
  EXPECT_EQ(round->kinds, f.kinds);
  EXPECT_FALSE(TraceFilter::from_json(nlohmann::json{{"pid", "x"}}).ok());
}

}  // namespace
}  // namespace vigil
