// The control socket protocol over a real Unix socket (no root needed).
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

#include "agent/control/server.h"

namespace vigil {
namespace {

class Control : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fmt::format("{}/vigil_ctl_{}.sock", ::testing::TempDir(), getpid());
    auto s = ControlServer::listen(path_, [] { return nlohmann::json{{"agent", "vigild"}}; });
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
  }

  int dial() {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::copy(path_.begin(), path_.end(), a.sun_path);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    return fd;
  }

  // Runs the server's loop until `fd` has a full line (or the server closed it).
  std::string read_line(int fd) {
    std::string got;
    for (int i = 0; i < 200 && got.find('\n') == std::string::npos; ++i) {
      pump();
      char buf[4096];
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) got.append(buf, n);
      if (n == 0) break;
    }
    return got.substr(0, got.find('\n'));
  }

  void pump() {
    std::vector<pollfd> fds;
    server_->fill_pollfds(fds);
    if (::poll(fds.data(), fds.size(), 10) > 0) server_->service(fds.data(), fds.size());
  }

  void send_line(int fd, const std::string& s) {
    std::string l = s + "\n";
    ASSERT_EQ(send(fd, l.data(), l.size(), 0), static_cast<ssize_t>(l.size()));
  }

  static Event event_of(uint32_t pid, const char* comm) {
    Event e;
    ProcessRef proc;
    proc.pid = pid;
    proc.comm = comm;
    e.process = std::make_shared<const ProcessRef>(proc);
    e.body = ConnectionEvent{};
    return e;
  }

  std::string path_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(Control, SocketIsOwnerOnly) {
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(Control, StatusRoundTrip) {
  int fd = dial();
  send_line(fd, R"({"cmd":"status"})");
  EXPECT_EQ(read_line(fd), R"({"agent":"vigild"})");
  close(fd);
}

TEST_F(Control, GarbageGetsAnErrorNotACrash) {
  int fd = dial();
  send_line(fd, "\x01\x02 not json");
  EXPECT_NE(read_line(fd).find("unknown request"), std::string::npos);
  close(fd);
}

TEST_F(Control, TraceStreamsOnlyMatchingEvents) {
  int fd = dial();
  send_line(fd, R"({"cmd":"trace","pid":42})");
  for (int i = 0; i < 5 && server_->subscribers() == 0; ++i) pump();
  ASSERT_EQ(server_->subscribers(), 1u);
  server_->publish(event_of(41, "a"), "first");
  server_->publish(event_of(42, "b"), "second");
  EXPECT_EQ(read_line(fd), "second");
  close(fd);
  for (int i = 0; i < 5 && server_->subscribers() != 0; ++i) pump();
  EXPECT_EQ(server_->subscribers(), 0u);
}

TEST_F(Control, SecondServerOnALiveSocketIsRefused) {
  auto again = ControlServer::listen(path_, [] { return nlohmann::json{}; });
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("in use"), std::string::npos);
}

TEST_F(Control, StaleSocketFileIsReplaced) {
  server_.reset();  // removes the file; leave a stale one behind like a SIGKILL would
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::copy(path_.begin(), path_.end(), a.sun_path);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  close(fd);
  auto s = ControlServer::listen(path_, [] { return nlohmann::json{{"ok", true}}; });
  ASSERT_TRUE(s.ok()) << s.error().message;
  server_ = std::move(*s);
  int c = dial();
  send_line(c, R"({"cmd":"status"})");
  EXPECT_EQ(read_line(c), R"({"ok":true})");
  close(c);
}

}  // namespace
}  // namespace vigil
