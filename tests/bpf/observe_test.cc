// Kernel tier: loads the real observation programs, makes real connections on
// loopback (curl and vigil_test_client against servers run here), and asserts
// every decoded field of the connection events, both sides.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <fstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <thread>
#include <tuple>

#include "agent/events/event_mapper.h"
#include "base/file.h"
#include "base/log.h"
#include "collectors/kernel/observer.h"
#include "collectors/kernel/system.h"
#include "collectors/tls/tls_manager.h"
#include "tests/bpf/bpf_test_util.h"

namespace vigil {
namespace {

std::string self_exe() {
  return std::filesystem::read_symlink("/proc/self/exe").string();
}

std::string self_cgroup() { return parse_proc_cgroup_v2(read_small_file("/proc/self/cgroup")); }

// The kernel's comm of a program: its basename cut to 15 bytes.
std::string comm_of_path(const std::string& path) {
  return std::filesystem::path(path).filename().string().substr(0, VIGIL_COMM_LEN - 1);
}

using testing_util::spawn;
using testing_util::wait_exit;

struct Listener {
  int fd = -1;
  sockaddr_in addr{};
};

Listener listen_loopback(int backlog) {
  Listener l;
  l.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  l.addr.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &l.addr.sin_addr);
  socklen_t len = sizeof(l.addr);
  EXPECT_EQ(bind(l.fd, reinterpret_cast<sockaddr*>(&l.addr), len), 0);
  EXPECT_EQ(listen(l.fd, backlog), 0);
  getsockname(l.fd, reinterpret_cast<sockaddr*>(&l.addr), &len);
  return l;
}

// A one-connection server on a loopback address. In `http` mode it answers one
// request (up to the blank line); otherwise it reads to EOF. Then it writes
// `reply_bytes` and closes.
class OneShotServer {
 public:
  OneShotServer(int family, const char* addr, int type, bool http, size_t reply_bytes)
      : family_(family), type_(type) {
    fd_ = socket(family, type | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_storage ss{};
    socklen_t len = fill(ss, addr, 0);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&ss), len), 0) << strerror(errno);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    if (type == SOCK_STREAM) {
      EXPECT_EQ(listen(fd_, 4), 0);
      thread_ = std::thread([this, http, reply_bytes] { serve(http, reply_bytes); });
    }
  }
  ~OneShotServer() {
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  uint16_t port() const { return port_; }
  pid_t tid() const { return tid_; }
  uint16_t peer_port() const { return peer_port_; }
  size_t bytes_read() const { return read_; }
  size_t bytes_written() const { return written_; }

 private:
  socklen_t fill(sockaddr_storage& ss, const char* addr, uint16_t port) {
    if (family_ == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      inet_pton(AF_INET, addr, &a->sin_addr);
      return sizeof(*a);
    }
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, addr, &a->sin6_addr);
    return sizeof(*a);
  }

  void serve(bool http, size_t reply_bytes) {
    pthread_setname_np(pthread_self(), "vigil-srv");
    tid_ = gettid();
    sockaddr_storage peer{};
    socklen_t plen = sizeof(peer);
    int c = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
    if (c < 0) return;
    peer_port_ = ntohs(family_ == AF_INET ? reinterpret_cast<sockaddr_in*>(&peer)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port);
    std::string got;
    char buf[4096];
    ssize_t n;
    while ((n = recv(c, buf, sizeof(buf), 0)) > 0) {
      got.append(buf, n);
      if (http && got.find("\r\n\r\n") != std::string::npos) break;
    }
    read_ = got.size();
    std::string reply;
    if (http) {
      std::string body(reply_bytes, 'b');
      reply = fmt::format("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                          body.size(), body);
    } else {
      reply.assign(reply_bytes, 'r');
    }
    written_ = send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    close(c);
  }

  int family_, type_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  pid_t tid_ = 0;
  uint16_t peer_port_ = 0;
  size_t read_ = 0, written_ = 0;
};

class ObserveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) {
      setup_error_ = "not root: the kernel tier needs root to load BPF programs";
      return;
    }
    route_libbpf_logs(false);
    if (auto s = ensure_kernel_mounts(); !s) {
      setup_error_ = s.error().message;
      return;
    }
    (void)raise_memlock_limit();
    auto mount = find_cgroup2_mount(read_small_file("/proc/self/mountinfo"));
    cgroups_ = new CgroupResolver(mount ? *mount : "", "/proc");
    procs_ = new ProcessTable("/proc", cgroups_);
    conns_ = new ConnectionTable();
    clock_ = new BootClock();
    mapper_ = new EventMapper(*procs_, *conns_, *clock_, "test-node");
    auto obs = Observer::create(ObserverOptions{}, [](const KernelEvent& ev) {
      auto emit = [](Event&& e) { events_.push_back(std::move(e)); };
      std::visit([&](const auto* record) { mapper_->handle(*record, emit); }, ev);
    });
    if (!obs) {
      setup_error_ = obs.error().message;
      return;
    }
    observer_ = obs->release();
    procs_->seed();
  }

  static void TearDownTestSuite() {
    delete observer_;  // detaches
    observer_ = nullptr;
  }

  void SetUp() override {
    if (!setup_error_.empty()) SKIP_OR_FAIL(setup_error_);
  }

  // Polls until `n` connection events match `pred`; returns them in order.
  template <class Pred>
  std::vector<Event> wait_for(size_t n, Pred pred, int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      std::vector<Event> hits;
      for (const auto& e : events_) {
        const auto* c = std::get_if<ConnectionEvent>(&e.body);
        if (c && pred(e, *c)) hits.push_back(e);
      }
      if (hits.size() >= n || std::chrono::steady_clock::now() > deadline) return hits;
      (void)observer_->poll(50);
    }
  }

  static const ConnectionEvent& conn(const Event& e) { return std::get<ConnectionEvent>(e.body); }

  // The open and close of one side, matched by pid and role.
  std::pair<Event, Event> side(uint32_t pid, const char* role, uint16_t local_port = 0) {
    auto hits = wait_for(2, [&](const Event& e, const ConnectionEvent& c) {
      return e.process->pid == pid && c.conn.role == role &&
             (local_port == 0 || c.conn.local.port == local_port);
    });
    EXPECT_EQ(hits.size(), 2u) << "pid " << pid << " role " << role;
    if (hits.size() < 2) return {};
    EXPECT_EQ(conn(hits[0]).state, "open");
    EXPECT_EQ(conn(hits[1]).state, "close");
    EXPECT_EQ(conn(hits[0]).conn.id, conn(hits[1]).conn.id);
    return {hits[0], hits[1]};
  }

  void expect_tuple(const Event& e, const char* proto, const char* family, const char* role,
                    const std::string& laddr, uint16_t lport, const std::string& raddr,
                    uint16_t rport) {
    const auto& c = conn(e).conn;
    EXPECT_EQ(c.proto, proto);
    EXPECT_EQ(c.family, family);
    EXPECT_EQ(c.role, role);
    EXPECT_EQ(c.local.addr, laddr);
    if (lport) EXPECT_EQ(c.local.port, lport);
    else EXPECT_NE(c.local.port, 0);
    EXPECT_EQ(c.remote.addr, raddr);
    EXPECT_EQ(c.remote.port, rport);
  }

  void expect_child_process(const Event& e, pid_t pid, const std::string& exe) {
    ASSERT_TRUE(e.process != nullptr);
    EXPECT_EQ(e.process->pid, static_cast<uint32_t>(pid));
    EXPECT_EQ(e.process->tid, static_cast<uint32_t>(pid));
    EXPECT_EQ(e.process->ppid, static_cast<uint32_t>(getpid()));
    EXPECT_EQ(e.process->uid, getuid());
    EXPECT_EQ(e.process->comm, comm_of_path(exe));
    EXPECT_EQ(e.process->exe, exe);
    EXPECT_EQ(e.process->cgroup, self_cgroup());
    EXPECT_EQ(e.node, "test-node");
    EXPECT_GT(e.time_ns, 1'700'000'000'000'000'000ull);
  }

  void expect_server_process(const Event& e, pid_t tid) {
    ASSERT_TRUE(e.process != nullptr);
    EXPECT_EQ(e.process->pid, static_cast<uint32_t>(getpid()));
    EXPECT_EQ(e.process->tid, static_cast<uint32_t>(tid));
    EXPECT_EQ(e.process->ppid, static_cast<uint32_t>(getppid()));
    EXPECT_EQ(e.process->comm, "vigil-srv");
    EXPECT_EQ(e.process->exe, self_exe());
  }

  // curl against an HTTP-mode server; asserts both sides fully.
  void curl_roundtrip(int family, const char* addr, const char* family_name) {
    OneShotServer server(family, addr, SOCK_STREAM, true, 2);
    std::string host = family == AF_INET6 ? fmt::format("[{}]", addr) : addr;
    std::string url = fmt::format("http://{}:{}/vigil-test", host, server.port());
    pid_t pid = spawn({"/usr/bin/curl", "-s", "-o", "/dev/null", url});
    ASSERT_GT(pid, 0);
    ASSERT_EQ(wait_exit(pid), 0);
    server.join();

    auto [copen, cclose] = side(pid, "client");
    expect_child_process(copen, pid, "/usr/bin/curl");
    expect_tuple(copen, "tcp", family_name, "client", addr, server.peer_port(), addr, server.port());
    EXPECT_FALSE(conn(copen).bytes_sent.has_value());
    EXPECT_EQ(conn(cclose).bytes_sent, server.bytes_read());
    EXPECT_EQ(conn(cclose).bytes_recv, server.bytes_written());

    auto [sopen, sclose] = side(getpid(), "server", server.port());
    expect_server_process(sopen, server.tid());
    expect_tuple(sopen, "tcp", family_name, "server", addr, server.port(), addr, server.peer_port());
    EXPECT_EQ(conn(sclose).bytes_sent, server.bytes_written());
    EXPECT_EQ(conn(sclose).bytes_recv, server.bytes_read());
  }

  // A test client run against a drain-mode TCP server; asserts both sides fully.
  // `src` is the address the kernel picks for the client (127.0.0.1 for any 127/8 peer).
  void tcp_roundtrip(int family, const char* addr, const char* src, const char* family_name) {
    OneShotServer server(family, addr, SOCK_STREAM, false, 500);
    std::string client = std::filesystem::canonical(VIGIL_TEST_CLIENT).string();
    pid_t pid = spawn({client, "tcp", addr, std::to_string(server.port()), "--send", "1000"});
    ASSERT_GT(pid, 0);
    ASSERT_EQ(wait_exit(pid), 0);
    server.join();

    auto [copen, cclose] = side(pid, "client");
    expect_child_process(copen, pid, client);
    expect_tuple(copen, "tcp", family_name, "client", src, server.peer_port(), addr, server.port());
    expect_tuple(cclose, "tcp", family_name, "client", src, server.peer_port(), addr, server.port());
    EXPECT_EQ(conn(cclose).bytes_sent, 1000u);
    EXPECT_EQ(conn(cclose).bytes_recv, 500u);

    auto [sopen, sclose] = side(getpid(), "server", server.port());
    expect_server_process(sopen, server.tid());
    expect_tuple(sopen, "tcp", family_name, "server", addr, server.port(), src, server.peer_port());
    EXPECT_EQ(conn(sclose).bytes_sent, 500u);
    EXPECT_EQ(conn(sclose).bytes_recv, 1000u);
    EXPECT_NE(conn(copen).conn.id, conn(sopen).conn.id);
  }

  void udp_connected(int family, const char* addr, const char* family_name) {
    OneShotServer server(family, addr, SOCK_DGRAM, false, 0);
    std::string client = std::filesystem::canonical(VIGIL_TEST_CLIENT).string();
    pid_t pid = spawn({client, "udp", addr, std::to_string(server.port()), "--send", "64"});
    ASSERT_GT(pid, 0);
    ASSERT_EQ(wait_exit(pid), 0);
    auto [open, close] = side(pid, "client");
    expect_child_process(open, pid, client);
    expect_tuple(open, "udp", family_name, "client", addr, 0, addr, server.port());
    expect_tuple(close, "udp", family_name, "client", addr, conn(open).conn.local.port, addr,
                 server.port());
  }

  static inline std::string setup_error_;
  static inline CgroupResolver* cgroups_ = nullptr;
  static inline ProcessTable* procs_ = nullptr;
  static inline ConnectionTable* conns_ = nullptr;
  static inline BootClock* clock_ = nullptr;
  static inline EventMapper* mapper_ = nullptr;
  static inline Observer* observer_ = nullptr;
  static inline std::vector<Event> events_;
};

TEST_F(ObserveTest, AllProgramsAttached) {
  auto progs = observer_->programs();
  EXPECT_EQ(progs.size(), 8u);
  for (const auto& p : progs) {
    EXPECT_TRUE(p.attached) << p.name;
    EXPECT_GT(p.id, 0u) << p.name;
  }
}

TEST_F(ObserveTest, CurlIpv4BothSides) { curl_roundtrip(AF_INET, "127.0.0.1", "ipv4"); }
TEST_F(ObserveTest, CurlIpv6BothSides) { curl_roundtrip(AF_INET6, "::1", "ipv6"); }

TEST_F(ObserveTest, TestClientTcpIpv4) { tcp_roundtrip(AF_INET, "127.0.0.1", "127.0.0.1", "ipv4"); }
TEST_F(ObserveTest, TestClientTcpIpv6) { tcp_roundtrip(AF_INET6, "::1", "::1", "ipv6"); }
TEST_F(ObserveTest, TestClientTcpOtherLoopbackAddress) {
  tcp_roundtrip(AF_INET, "127.0.0.2", "127.0.0.1", "ipv4");
}
TEST_F(ObserveTest, ConnectedUdpIpv4) { udp_connected(AF_INET, "127.0.0.1", "ipv4"); }
TEST_F(ObserveTest, ConnectedUdpIpv6) { udp_connected(AF_INET6, "::1", "ipv6"); }

TEST_F(ObserveTest, ExitWithSocketOpenReportsClose) {
  OneShotServer server(AF_INET, "127.0.0.1", SOCK_STREAM, false, 300);
  std::string client = std::filesystem::canonical(VIGIL_TEST_CLIENT).string();
  pid_t pid = spawn({client, "tcp", "127.0.0.1", std::to_string(server.port()), "--send", "700",
                     "--no-close"});
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_exit(pid), 0);
  auto [open, close] = side(pid, "client");
  EXPECT_EQ(conn(close).bytes_sent, 700u);
  EXPECT_EQ(conn(close).bytes_recv, 300u);
}

TEST_F(ObserveTest, ExitWithMoreSocketsThanSlotsReportsEveryClose) {
  // More connections than the per-process slots (VIGIL_PID_FD_SLOTS): the
  // exit falls back to walking the whole table, and still misses none.
  constexpr int kConns = VIGIL_PID_FD_SLOTS + 4;
  auto [lfd, a] = listen_loopback(kConns + 1);
  std::thread server([&] {
    for (int i = 0; i < kConns; ++i) {
      int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      char buf[256];
      while (recv(c, buf, sizeof(buf), 0) > 0) {
      }
      (void)!send(c, "ok", 2, MSG_NOSIGNAL);
      close(c);
    }
  });
  std::string client = std::filesystem::canonical(VIGIL_TEST_CLIENT).string();
  pid_t pid = spawn({client, "tcp", "127.0.0.1", std::to_string(ntohs(a.sin_port)), "--send", "5",
                     "--no-close", "--count", std::to_string(kConns)});
  ASSERT_GT(pid, 0);
  ASSERT_EQ(wait_exit(pid), 0);
  server.join();
  close(lfd);
  auto closes = wait_for(kConns, [&](const Event& e, const ConnectionEvent& c) {
    return e.process->pid == static_cast<uint32_t>(pid) && c.state == "close";
  });
  ASSERT_EQ(closes.size(), static_cast<size_t>(kConns));
  for (const auto& e : closes) {
    EXPECT_EQ(conn(e).bytes_sent, 5u);
    EXPECT_EQ(conn(e).bytes_recv, 2u);
  }
}

TEST_F(ObserveTest, RefusedConnectIsNotAConnection) {
  // Find a free port, then close it so the connect is refused.
  OneShotServer probe(AF_INET, "127.0.0.1", SOCK_DGRAM, false, 0);
  uint16_t port = probe.port();
  std::string client = std::filesystem::canonical(VIGIL_TEST_CLIENT).string();
  pid_t pid = spawn({client, "tcp", "127.0.0.1", std::to_string(port)});
  ASSERT_GT(pid, 0);
  EXPECT_EQ(wait_exit(pid), 1);
  auto hits = wait_for(1, [&](const Event& e, const ConnectionEvent&) {
    return e.process->pid == static_cast<uint32_t>(pid);
  }, 500);
  EXPECT_TRUE(hits.empty());
}

TEST_F(ObserveTest, OwnTrafficIsNeverReported) {
  // A second program set that treats this test process as the agent.
  std::vector<uint32_t> pids;
  auto own = Observer::create(ObserverOptions{.ringbuf_bytes = 1u << 20,
                                              .self_pid = static_cast<uint32_t>(getpid())},
                              [&](const KernelEvent& ev) {
                                if (auto* c = std::get_if<const vigil_conn_event*>(&ev))
                                  pids.push_back((*c)->hdr.pid);
                              });
  ASSERT_TRUE(own.ok()) << own.error().message;
  OneShotServer server(AF_INET, "127.0.0.1", SOCK_STREAM, false, 10);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(server.port());
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  shutdown(fd, SHUT_WR);
  server.join();
  close(fd);
  // Positive control: a child's connection is seen by the same program set.
  OneShotServer server2(AF_INET, "127.0.0.1", SOCK_STREAM, false, 10);
  std::string client = std::filesystem::canonical(VIGIL_TEST_CLIENT).string();
  pid_t pid = spawn({client, "tcp", "127.0.0.1", std::to_string(server2.port())});
  ASSERT_EQ(wait_exit(pid), 0);
  server2.join();
  for (int i = 0; i < 20 && std::count(pids.begin(), pids.end(), pid) < 2; ++i)
    (void)(*own)->poll(50);
  EXPECT_EQ(std::count(pids.begin(), pids.end(), static_cast<uint32_t>(getpid())), 0);
  EXPECT_EQ(std::count(pids.begin(), pids.end(), static_cast<uint32_t>(pid)), 2);
}

// Payload records of one connection, in arrival order (a private program set
// with capture on, so the suite's own set keeps capture off).
TEST_F(ObserveTest, PayloadOffsetsLengthsAndPeek) {
  std::vector<vigil_data_event> records;
  std::vector<std::string> bytes;
  auto cap = Observer::create(ObserverOptions{.ringbuf_bytes = 1u << 20, .self_pid = 0, .capture_bytes = 16},
                              [&](const KernelEvent& ev) {
                                if (auto* d = std::get_if<const vigil_data_event*>(&ev)) {
                                  records.push_back(**d);
                                  bytes.emplace_back(payload(**d));
                                }
                              });
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  auto [lfd, a] = listen_loopback(1);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  int s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(s, 0);
  const std::string req = "GET /peek-test HTTP/1.1\r\nHost: x\r\n\r\n";  // 38 bytes > cap 16
  ASSERT_EQ(write(c, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  char buf[128];
  ASSERT_EQ(recv(s, buf, sizeof(buf), MSG_PEEK), static_cast<ssize_t>(req.size()));
  ASSERT_EQ(recv(s, buf, 10, 0), 10);
  ASSERT_EQ(recv(s, buf, sizeof(buf), 0), static_cast<ssize_t>(req.size() - 10));
  close(c);
  close(s);
  close(lfd);
  for (int i = 0; i < 20 && records.size() < 3; ++i) (void)(*cap)->poll(50);
  ASSERT_EQ(records.size(), 3u) << "write, then two reads; the peek is not progress";
  const auto& w = records[0];
  EXPECT_EQ(w.hdr.pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(w.hdr.tid, static_cast<uint32_t>(gettid()));
  EXPECT_EQ(w.direction, VIGIL_DIR_EGRESS);
  EXPECT_EQ(w.role, VIGIL_ROLE_CLIENT);
  EXPECT_EQ(w.l7, VIGIL_L7_HTTP1);
  EXPECT_EQ(w.offset, 0u);
  EXPECT_EQ(w.length, req.size());
  EXPECT_EQ(w.captured, 16u) << "capped, the true length still reported";
  EXPECT_EQ(bytes[0], req.substr(0, 16));
  EXPECT_EQ(records[1].direction, VIGIL_DIR_INGRESS);
  EXPECT_EQ(records[1].role, VIGIL_ROLE_SERVER);
  EXPECT_EQ(records[1].offset, 0u);
  EXPECT_EQ(records[1].length, 10u);
  EXPECT_EQ(bytes[1], req.substr(0, 10));
  EXPECT_EQ(records[2].offset, 10u);
  EXPECT_EQ(records[2].length, req.size() - 10);
  EXPECT_EQ(bytes[2], req.substr(10, 16));
  EXPECT_NE(records[0].conn_id, records[1].conn_id);
  EXPECT_EQ(records[1].conn_id, records[2].conn_id);
}

// The counting filter in front of `conns` (abi.h conn_filter) never hides a
// tracked socket: every write and read of 2 x 24 tracked sockets is recorded,
// and the filter's counts match the table after opens, closes and an exit with
// sockets still open (each way a socket leaves the table).
TEST_F(ObserveTest, ConnFilterNeverHidesATrackedSocket) {
  constexpr int kConns = 24;
  size_t records = 0;
  auto cap = Observer::create(ObserverOptions{.ringbuf_bytes = 1u << 20, .self_pid = 0, .capture_bytes = 64},
                              [&](const KernelEvent& ev) {
                                if (auto* d = std::get_if<const vigil_data_event*>(&ev))
                                  if ((*d)->hdr.pid == static_cast<uint32_t>(getpid())) ++records;
                              });
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  auto [lfd, a] = listen_loopback(kConns + 1);
  std::vector<std::pair<uint32_t, int32_t>> fds;
  std::vector<int> mine;
  const std::string req = "GET /filter HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int i = 0; i < kConns; ++i) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    int s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(s, 0);
    ASSERT_EQ(write(c, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    char buf[128];
    ASSERT_EQ(read(s, buf, sizeof(buf)), static_cast<ssize_t>(req.size()));
    for (int fd : {c, s}) {
      mine.push_back(fd);
      fds.emplace_back(getpid(), fd);
    }
  }
  for (int i = 0; i < 40 && records < 2 * kConns; ++i) (void)(*cap)->poll(50);
  EXPECT_EQ(records, 2u * kConns) << "a write or read of a tracked socket was filtered out";
  auto check = (*cap)->check_conn_filter(fds);
  EXPECT_EQ(check.tracked, 2u * kConns);
  EXPECT_EQ(check.unfiltered, 0u);
  EXPECT_EQ(check.counted, check.expected);
  for (size_t i = 0; i < mine.size(); i += 2) close(mine[i]);  // the client sides
  check = (*cap)->check_conn_filter(fds);
  EXPECT_EQ(check.tracked, 1u * kConns);
  EXPECT_EQ(check.unfiltered, 0u);
  EXPECT_EQ(check.counted, check.expected);
  // A child leaves with its sockets open: the exit takes them out of the table.
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  pid_t child = fork();
  if (child == 0) {
    for (int i = 0; i < 3; ++i) {
      int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || write(report[1], &c, sizeof(c)) < 0)
        _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_EQ(status, 0);
  close(report[1]);
  std::vector<std::pair<uint32_t, int32_t>> gone;
  for (int fd; read(report[0], &fd, sizeof(fd)) == sizeof(fd);) gone.emplace_back(child, fd);
  close(report[0]);
  ASSERT_EQ(gone.size(), 3u);
  check = (*cap)->check_conn_filter(gone);
  EXPECT_EQ(check.tracked, 0u);
  EXPECT_EQ(check.counted, check.expected);
  for (size_t i = 1; i < mine.size(); i += 2) close(mine[i]);
  check = (*cap)->check_conn_filter(fds);
  EXPECT_EQ(check.tracked, 0u);
  EXPECT_EQ(check.counted, check.expected);
  // The child's connections wait in the backlog: taken without blocking.
  ASSERT_EQ(fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK), 0);
  for (int s; (s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) close(s);
  close(lfd);
}

// sendmmsg/recvmmsg (a resolver sends its A and AAAA queries in one call): the
// bytes of every message counted on a UDP socket, both ways, the answers read
// into buffers longer than the datagrams; on a TCP socket the messages are one
// stretch of the stream whose first message is what the record shows.
TEST_F(ObserveTest, SendmmsgAndRecvmmsgCounted) {
  std::vector<vigil_conn_event> closes;
  std::vector<vigil_data_event> records;
  auto cap = Observer::create(ObserverOptions{.ringbuf_bytes = 1u << 20, .self_pid = 0, .capture_bytes = 64},
                              [&](const KernelEvent& ev) {
                                if (auto* c = std::get_if<const vigil_conn_event*>(&ev))
                                  if ((*c)->hdr.type == VIGIL_EV_CONN_CLOSE) closes.push_back(**c);
                                if (auto* d = std::get_if<const vigil_data_event*>(&ev)) records.push_back(**d);
                              });
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  auto batch = [](std::vector<std::string>& parts, std::vector<iovec>& iov, std::vector<mmsghdr>& msgs) {
    iov.resize(parts.size());
    msgs.assign(parts.size(), mmsghdr{});
    for (size_t i = 0; i < parts.size(); ++i) {
      iov[i] = iovec{parts[i].data(), parts[i].size()};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
  };
  // UDP: 2 queries of 40 and 30 bytes out, echoed back, read in one recvmmsg.
  int srv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t alen = sizeof(a);
  ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&a), alen), 0);
  getsockname(srv, reinterpret_cast<sockaddr*>(&a), &alen);
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(u, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  sockaddr_in local{};
  socklen_t llen = sizeof(local);
  getsockname(u, reinterpret_cast<sockaddr*>(&local), &llen);
  std::vector<std::string> queries = {std::string(40, 'q'), std::string(30, 'r')};
  std::vector<iovec> iov;
  std::vector<mmsghdr> msgs;
  batch(queries, iov, msgs);
  ASSERT_EQ(sendmmsg(u, msgs.data(), 2, 0), 2);
  char buf[128];
  for (int i = 0; i < 2; ++i) {
    sockaddr_in peer{};
    socklen_t plen = sizeof(peer);
    ssize_t n = recvfrom(srv, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
    ASSERT_GT(n, 0);
    ASSERT_EQ(sendto(srv, buf, n, 0, reinterpret_cast<sockaddr*>(&peer), plen), n);
  }
  std::vector<std::string> answers(2, std::string(512, '\0'));
  batch(answers, iov, msgs);
  int got = 0;
  for (int tries = 0; got < 2 && tries < 100; ++tries) {
    int n = recvmmsg(u, msgs.data() + got, 2 - got, MSG_DONTWAIT, nullptr);
    if (n > 0) got += n;
    else usleep(10'000);
  }
  ASSERT_EQ(got, 2);
  close(u);
  close(srv);

  // TCP: an HTTP request written as two messages of one sendmmsg.
  auto [lfd, ta] = listen_loopback(1);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&ta), sizeof(ta)), 0);
  int s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(s, 0);
  std::vector<std::string> request = {"GET /mmsg HTTP/1.1\r\n", "Host: x\r\n\r\n"};
  batch(request, iov, msgs);
  ASSERT_EQ(sendmmsg(c, msgs.data(), 2, 0), 2);
  close(c);
  close(s);
  close(lfd);

  auto udp_close = [&]() -> const vigil_conn_event* {
    for (const auto& e : closes)
      if (e.tuple.proto == VIGIL_PROTO_UDP && e.tuple.lport == ntohs(local.sin_port)) return &e;
    return nullptr;
  };
  auto request_record = [&]() -> const vigil_data_event* {
    for (const auto& r : records)
      if (r.direction == VIGIL_DIR_EGRESS && payload(r).starts_with("GET /mmsg")) return &r;
    return nullptr;
  };
  for (int i = 0; i < 40 && (!udp_close() || !request_record()); ++i) (void)(*cap)->poll(50);
  const vigil_conn_event* uc = udp_close();
  ASSERT_NE(uc, nullptr);
  EXPECT_EQ(uc->hdr.pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(uc->bytes_sent, 70u);
  EXPECT_EQ(uc->bytes_recv, 70u) << "the datagrams' lengths, not the buffers'";
  const vigil_data_event* r = request_record();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->offset, 0u);
  EXPECT_EQ(r->length, request[0].size() + request[1].size());
  EXPECT_EQ(r->captured, request[0].size()) << "the first message's bytes";
  EXPECT_EQ(r->l7, VIGIL_L7_HTTP1);
}

// A keep-alive connection older than the programs: found in /proc, seeded, and
// tracked from its next write (open reported then, with the role found) with
// the stream offsets counted from there. A seed never used again reports
// nothing on close; one whose fd now holds a file is dropped at its first read.
TEST_F(ObserveTest, SeededConnectionsBecomeConnectionsAtTheirNextUse) {
  auto [lfd, a] = listen_loopback(2);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  int s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(s, 0);
  int idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  int idle_s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(idle_s, 0);
  int gone = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(gone, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  int gone_s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(gone_s, 0);
  const std::string before = "GET /before HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(c, before.data(), before.size()), static_cast<ssize_t>(before.size()));
  char buf[256];
  ASSERT_EQ(read(s, buf, sizeof(buf)), static_cast<ssize_t>(before.size()));

  std::vector<vigil_conn_event> conns;
  std::vector<vigil_data_event> records;
  auto cap = Observer::create(ObserverOptions{.ringbuf_bytes = 1u << 20, .self_pid = 0, .capture_bytes = 64},
                              [&](const KernelEvent& ev) {
                                if (auto* e = std::get_if<const vigil_conn_event*>(&ev)) conns.push_back(**e);
                                if (auto* d = std::get_if<const vigil_data_event*>(&ev)) records.push_back(**d);
                              });
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  auto scan = find_open_sockets("/proc", 0, 1 << 20);
  std::vector<OpenSocket> mine;
  for (const auto& o : scan.sockets)
    if (o.pid == static_cast<uint32_t>(getpid())) mine.push_back(o);
  auto role_of = [&](int fd) {
    for (const auto& o : mine)
      if (o.fd == fd) return static_cast<int>(o.role);
    return -1;
  };
  ASSERT_EQ(role_of(c), VIGIL_ROLE_CLIENT);
  ASSERT_EQ(role_of(s), VIGIL_ROLE_SERVER);
  ASSERT_EQ(role_of(idle_s), VIGIL_ROLE_SERVER);
  ASSERT_EQ(role_of(lfd), -1) << "a listening socket is not a connection";
  // The seeded fd of a socket closed (unseen: the seeds' own close does nothing)
  // before its seed is used, then reused for a file.
  ASSERT_EQ(role_of(gone), VIGIL_ROLE_CLIENT);
  EXPECT_EQ((*cap)->seed_connections(mine), mine.size());
  EXPECT_EQ((*cap)->seed_connections(mine), 0u) << "seeded once";
  close(gone);
  int file = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ASSERT_EQ(file, gone);
  ASSERT_GT(read(file, buf, sizeof(buf)), 0);

  const std::string after = "GET /after HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(c, after.data(), after.size()), static_cast<ssize_t>(after.size()));
  ASSERT_EQ(read(s, buf, sizeof(buf)), static_cast<ssize_t>(after.size()));
  close(idle);
  close(idle_s);
  close(c);
  close(s);
  close(gone_s);
  close(file);
  close(lfd);
  for (int i = 0; i < 20 && (conns.size() < 4 || records.size() < 2); ++i) (void)(*cap)->poll(50);

  std::string seen;
  for (const auto& r : records) seen += fmt::format("[fd {} dir {} len {}] ", r.fd, r.direction, r.length);
  ASSERT_EQ(records.size(), 2u) << "the write after the seeding and its read: " << seen;
  const vigil_data_event& w = records[0];
  EXPECT_EQ(w.direction, VIGIL_DIR_EGRESS);
  EXPECT_EQ(w.role, VIGIL_ROLE_CLIENT);
  EXPECT_EQ(w.offset, 0u) << "counted from the seed's first use";
  EXPECT_EQ(payload(w), after);
  EXPECT_EQ(records[1].role, VIGIL_ROLE_SERVER);
  EXPECT_NE(records[1].conn_id, w.conn_id);
  // Opens and closes of the two used seeds only: the idle pair and the reused fd report nothing.
  std::vector<std::tuple<uint32_t, int32_t, uint8_t>> got;
  for (const auto& e : conns) got.emplace_back(e.hdr.type, e.fd, e.tuple.role);
  using T = std::tuple<uint32_t, int32_t, uint8_t>;
  EXPECT_EQ(got, (std::vector<T>{{VIGIL_EV_CONN_OPEN, c, VIGIL_ROLE_CLIENT},
                                 {VIGIL_EV_CONN_OPEN, s, VIGIL_ROLE_SERVER},
                                 {VIGIL_EV_CONN_CLOSE, c, VIGIL_ROLE_CLIENT},
                                 {VIGIL_EV_CONN_CLOSE, s, VIGIL_ROLE_SERVER}}));
  for (const auto& e : conns) {
    EXPECT_EQ(e.tuple.proto, VIGIL_PROTO_TCP);
    EXPECT_EQ(e.tuple.family, AF_INET);
    EXPECT_NE(e.conn_id, 0u);
  }
  EXPECT_EQ(conns[0].tuple.rport, ntohs(a.sin_port));
  EXPECT_EQ(conns[1].tuple.lport, ntohs(a.sin_port));
  (*cap)->forget_seeds(getpid());
}

// Issue 14: the kernel's protocol inference takes any upper-case method token
// (WebDAV, SSDP, QUERY) and a request after an empty line as HTTP/1, and still
// leaves other client-first protocols alone (no record at all).
TEST_F(ObserveTest, InferenceTakesAnyMethodTokenAndALeadingEmptyLine) {
  std::vector<std::string> sent;  // the first bytes of each client write seen, in order
  auto cap = Observer::create(ObserverOptions{.ringbuf_bytes = 1u << 20, .self_pid = 0, .capture_bytes = 64},
                              [&](const KernelEvent& ev) {
                                if (auto* d = std::get_if<const vigil_data_event*>(&ev))
                                  if ((*d)->direction == VIGIL_DIR_EGRESS && (*d)->l7 == VIGIL_L7_HTTP1)
                                    sent.emplace_back(payload(**d));
                              });
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  const std::vector<std::string> http = {"REPORT /cal HTTP/1.1\r\n\r\n", "\r\nGET /after-crlf HTTP/1.1\r\n\r\n",
                                         "M-SEARCH * HTTP/1.1\r\n\r\n", "PURGE http://h/x HTTP/1.1\r\n\r\n"};
  const std::vector<std::string> other = {"SET key value\r\n", "ping\r\n"};
  for (const auto& msg : {http[0], http[1], http[2], http[3], other[0], other[1]}) {
    auto [lfd, a] = listen_loopback(1);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    int s = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_EQ(write(c, msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
    close(c);
    close(s);
    close(lfd);
  }
  for (int i = 0; i < 20 && sent.size() < http.size(); ++i) (void)(*cap)->poll(50);
  (void)(*cap)->poll(100);
  EXPECT_EQ(sent, http);
}

TEST_F(ObserveTest, ExecForkExitKeepTheProcessTable) {
  std::string client = std::filesystem::canonical(VIGIL_TEST_CLIENT).string();
  OneShotServer server(AF_INET, "127.0.0.1", SOCK_STREAM, false, 1);
  pid_t pid = spawn({client, "tcp", "127.0.0.1", std::to_string(server.port())});
  ASSERT_EQ(wait_exit(pid), 0);
  side(pid, "client");
  // The exec event recorded the exe even though the process is gone now.
  const ProcessInfo* p = procs_->find(pid);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->exe, client);
  EXPECT_EQ(p->ppid, static_cast<uint32_t>(getpid()));
}

TEST_F(ObserveTest, NoKernelEventsLost) {
  auto lost = observer_->lost_counters();
  EXPECT_EQ(lost[VIGIL_LOST_RINGBUF], 0u);
  EXPECT_EQ(lost[VIGIL_LOST_CONN_TABLE], 0u);
  EXPECT_EQ(observer_->malformed_events(), 0u);
}

// Issue 14: a TLS library inside an executable is attached even when the process
// that showed it is gone before its maps are read (the executable was opened at
// its exec), and a failed attempt is tried again instead of sticking. /proc is a
// fake tree here; the "executable" is a copy of libssl (its own inode).
TEST_F(ObserveTest, TlsExecutableOfAGoneProcessIsAttachedAndFailuresAreRetried) {
  namespace fs = std::filesystem;
  fs::path tmp = fs::temp_directory_path() / fmt::format("vigil-tls-proc-{}", getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp / "bin");
  fs::path app = tmp / "bin" / "app";
  fs::copy_file("/usr/lib/x86_64-linux-gnu/libssl.so.3", app);
  struct stat st {};
  ASSERT_EQ(stat(app.c_str(), &st), 0);
  auto fake_pid = [&](const fs::path& proc, int pid, const fs::path& root) {
    fs::path d = proc / std::to_string(pid);
    fs::create_directories(d);
    fs::create_symlink(app, d / "exe");
    fs::create_directory_symlink(root, d / "root");
    std::ofstream(d / "maps") << fmt::format("7f0000000000-7f0000100000 r-xp 00000000 {:02x}:{:02x} {} {}\n",
                                             major(st.st_dev), minor(st.st_dev), st.st_ino, app.string());
    return d;
  };
  // A private program set with capture on (TLS programs load only with payload programs).
  auto tls_obs = Observer::create(ObserverOptions{.ringbuf_bytes = 1u << 20, .self_pid = 0, .capture_bytes = 16},
                                  [](const KernelEvent&) {});
  ASSERT_TRUE(tls_obs) << tls_obs.error().message;
  Observer& obs = **tls_obs;
  auto entry = [](const TlsManager& m, const std::string& path) {
    for (const auto& l : m.status())
      if (l.path == path) return l;
    return TlsLibraryStatus{};
  };

  {  // gone before the look: reached through the fd opened at exec
    fs::path d = fake_pid(tmp / "proc", 4242, "/");
    TlsManager m(obs, (tmp / "proc").string());
    m.on_exec(4242, 1);
    fs::remove_all(d);
    m.tick(2);
    TlsLibraryStatus l = entry(m, app.string());
    EXPECT_FALSE(l.probes.empty()) << l.error;
    EXPECT_EQ(l.kind, "openssl-3");
  }
  {  // unreadable where the process's root says it is: failed, shown, then retried
    fs::create_directories(tmp / "emptyroot");
    fake_pid(tmp / "proc2", 4343, tmp / "emptyroot");
    TlsManager m(obs, (tmp / "proc2").string());
    m.scan_all();
    TlsLibraryStatus l = entry(m, app.string());
    EXPECT_TRUE(l.probes.empty());
    EXPECT_NE(l.error.find("No such file"), std::string::npos) << l.error;
    fs::create_directories(tmp / "emptyroot" / app.parent_path().relative_path());
    fs::create_hard_link(app, tmp / "emptyroot" / app.relative_path());  // the same inode the maps name
    m.scan_all();
    l = entry(m, app.string());
    EXPECT_FALSE(l.probes.empty()) << l.error;
    EXPECT_EQ(l.error, "");
  }
  {  // a failure whose process is gone is forgotten at the next full walk
    fs::create_directories(tmp / "emptyroot2");
    fs::path d = fake_pid(tmp / "proc3", 4444, tmp / "emptyroot2");
    TlsManager m(obs, (tmp / "proc3").string());
    m.scan_all();
    EXPECT_NE(entry(m, app.string()).error, "");
    fs::remove_all(d);
    m.scan_all();
    EXPECT_EQ(m.status().size(), 0u) << entry(m, app.string()).error;
  }
  fs::remove_all(tmp);
}

// Security review F14: ~33 000 loopback pairs of one user filled `conns`, and no
// other process's connection was tracked any more. Each non-root uid has a
// share (a small one here), counted when it is refused.
TEST(SecurityF14, OneUsersSocketsCannotFillTheConnectionTable) {
  if (geteuid() != 0) SKIP_OR_FAIL("not root: the kernel tier needs root to load BPF programs");
  route_libbpf_logs(false);
  if (auto s = ensure_kernel_mounts(); !s) SKIP_OR_FAIL(s.error().message);
  std::map<uint32_t, int> opens;  // client-side opens by uid
  auto obs = Observer::create(ObserverOptions{.ringbuf_bytes = 1u << 20, .conn_uid_quota = 8},
                              [&](const KernelEvent& ev) {
                                if (auto* c = std::get_if<const vigil_conn_event*>(&ev))
                                  if ((*c)->hdr.type == VIGIL_EV_CONN_OPEN && (*c)->tuple.role == VIGIL_ROLE_CLIENT)
                                    ++opens[(*c)->hdr.uid];
                              });
  ASSERT_TRUE(obs) << obs.error().message;
  Listener l = listen_loopback(64);
  // uid 65534 holds 20 connections open; then uid 65533 makes one.
  int hold[2];
  ASSERT_EQ(pipe(hold), 0);
  auto connect_as = [&](uid_t uid, int n, int hold_fd) {
    pid_t pid = fork();
    if (pid == 0) {
      close(hold[1]);  // the parent's end: its close ends the hold
      if (setresuid(uid, uid, uid) != 0) _exit(2);
      std::vector<int> fds;
      for (int i = 0; i < n; ++i) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(c, reinterpret_cast<const sockaddr*>(&l.addr), sizeof(l.addr)) != 0) _exit(3);
        fds.push_back(c);
      }
      char b;
      if (hold_fd >= 0) (void)!read(hold_fd, &b, 1);  // until the parent is done
      _exit(0);
    }
    return pid;
  };
  pid_t hog = connect_as(65534, 20, hold[0]);
  std::vector<int> accepted;
  for (int i = 0; i < 20; ++i) accepted.push_back(accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
  pid_t other = connect_as(65533, 1, -1);
  accepted.push_back(accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_EQ(testing_util::wait_exit(other), 0);
  for (int i = 0; i < 20 && (opens[65534] < 8 || opens[65533] < 1); ++i) (void)(*obs)->poll(50);
  EXPECT_EQ(opens[65534], 8) << "uid 65534 tracked past its share";
  EXPECT_EQ(opens[65533], 1) << "another uid's connection was not tracked";
  EXPECT_EQ((*obs)->lost_counters()[VIGIL_LOST_CONN_QUOTA], 12u);
  // Its sockets closed (at exit), the share is free again.
  close(hold[1]);
  EXPECT_EQ(testing_util::wait_exit(hog), 0);
  close(hold[0]);
  opens.clear();
  pid_t again = connect_as(65534, 3, -1);
  for (int i = 0; i < 3; ++i) accepted.push_back(accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_EQ(testing_util::wait_exit(again), 0);
  for (int i = 0; i < 20 && opens[65534] < 3; ++i) (void)(*obs)->poll(50);
  EXPECT_EQ(opens[65534], 3);
  for (int fd : accepted) close(fd);
  close(l.fd);
}

}  // namespace
}  // namespace vigil
