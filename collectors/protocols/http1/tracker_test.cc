#include "collectors/protocols/http1/tracker.h"

#include <gtest/gtest.h>

namespace vigil::http1 {
namespace {

// Feeds one direction's records with running offsets.
struct Conn {
  explicit Conn(bool client) : t(client) {}
  void send(std::string_view bytes, uint64_t ts) { t.on_data(true, tx, bytes.size(), bytes, ts), tx += bytes.size(); }
  void recv(std::string_view bytes, uint64_t ts) { t.on_data(false, rx, bytes.size(), bytes, ts), rx += bytes.size(); }
  void recv_capped(std::string_view captured, uint64_t length, uint64_t ts) {
    t.on_data(false, rx, length, captured, ts);
    rx += length;
  }
  void lose_recv(uint64_t n) { rx += n; }
  Tracker t;
  uint64_t tx = 0, rx = 0;
};

TEST(Tracker, ClientKeepAlive) {
  Conn c(true);
  for (int i = 0; i < 3; ++i) {
    c.send("GET /item/" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n", 10 * i + 1);
    c.recv("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 10 * i + 5);
  }
  auto& x = c.t.exchanges();
  ASSERT_EQ(x.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(x[i].request.target, "/item/" + std::to_string(i));
    EXPECT_EQ(x[i].response.status, 200);
    EXPECT_EQ(x[i].response.first_ts - x[i].request.first_ts, 4u);
  }
}

TEST(Tracker, ServerSideReadsRequestsAndWritesResponses) {
  Conn s(false);
  s.recv("POST /login HTTP/1.1\r\nContent-Length: 4\r\n\r\nuser", 1);
  s.send("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", 2);
  ASSERT_EQ(s.t.exchanges().size(), 1u);
  EXPECT_EQ(s.t.exchanges()[0].request.method, "POST");
  EXPECT_EQ(s.t.exchanges()[0].response.status, 401);
}

TEST(Tracker, ServerAnswersBeforeReadingTheBody) {
  // nginx `return 200` answers after the head and reads the body afterwards.
  Conn s(false);
  s.recv("POST /upload HTTP/1.1\r\nContent-Length: 6\r\n\r\n", 1);
  s.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 2);
  EXPECT_TRUE(s.t.exchanges().empty());
  s.recv("abcdef", 3);
  s.recv("GET /next HTTP/1.1\r\n\r\n", 4);
  s.send("HTTP/1.1 204 No Content\r\n\r\n", 5);
  ASSERT_EQ(s.t.exchanges().size(), 2u);
  EXPECT_EQ(s.t.exchanges()[0].request.target, "/upload");
  EXPECT_EQ(s.t.exchanges()[0].request.body_bytes, 6u);
  EXPECT_EQ(s.t.exchanges()[0].response.status, 200);
  EXPECT_EQ(s.t.exchanges()[1].request.target, "/next");
  EXPECT_EQ(s.t.exchanges()[1].response.status, 204);
  s.t.on_close(6);
  EXPECT_EQ(s.t.stats().unpaired_requests + s.t.stats().unpaired_responses, 0u);
}

TEST(Tracker, PipelinedRequestsPairInOrder) {
  Conn c(true);
  c.send("GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n", 1);
  c.recv("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
         "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
         "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 2);
  auto& x = c.t.exchanges();
  ASSERT_EQ(x.size(), 3u);
  EXPECT_EQ(x[0].request.target, "/a");
  EXPECT_EQ(x[1].request.method, "HEAD");
  EXPECT_EQ(x[1].response.body_bytes, 0u);
  EXPECT_EQ(x[2].request.target, "/c");
  EXPECT_EQ(x[2].response.status, 404);
}

TEST(Tracker, LostResponseHeadNeverMispairs) {
  Conn c(true);
  c.send("GET /1 HTTP/1.1\r\n\r\n", 1);
  c.lose_recv(40);  // the whole response to /1 was lost (ring buffer full)
  c.send("GET /2 HTTP/1.1\r\n\r\n", 3);
  c.recv("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 4);  // answers /2
  EXPECT_TRUE(c.t.exchanges().empty()) << "held back: the hole may still fill";
  c.t.tick(4 + 50'000'000 + 1);
  c.send("GET /3 HTTP/1.1\r\n\r\n", 50'000'006);
  c.recv("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 50'000'007);
  ASSERT_FALSE(c.t.exchanges().empty());
  for (const auto& x : c.t.exchanges()) {
    if (x.request.target == "/1") {
      ADD_FAILURE() << "/1 paired with " << x.response.status;
    } else if (x.request.target == "/2") {
      EXPECT_EQ(x.response.status, 201);
    } else if (x.request.target == "/3") {
      EXPECT_EQ(x.response.status, 202);
    }
  }
  EXPECT_GE(c.t.stats().unpaired_requests, 1u);
}

TEST(Tracker, CappedBodyIsTruncatedNotLost) {
  Conn c(true);
  c.send("GET /big HTTP/1.1\r\n\r\n", 1);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
  std::string first = head + std::string(16384 - head.size(), 'x');
  c.recv_capped(first, head.size() + 100000, 2);
  c.send("GET /next HTTP/1.1\r\n\r\n", 3);
  c.recv("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4);
  auto& x = c.t.exchanges();
  ASSERT_EQ(x.size(), 2u);
  EXPECT_TRUE(x[0].response.truncated);
  EXPECT_EQ(x[0].response.body_bytes, 100000u);
  EXPECT_EQ(x[1].request.target, "/next");
}

TEST(Tracker, ResponseWithoutRequestIsCountedNotPaired) {
  Conn c(true);
  c.recv("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1);
  EXPECT_TRUE(c.t.exchanges().empty());
  EXPECT_EQ(c.t.stats().unpaired_responses, 1u);
}

TEST(Tracker, CloseFinishesBodyUntilClose) {
  Conn c(true);
  c.send("GET / HTTP/1.0\r\n\r\n", 1);
  c.recv("HTTP/1.0 200 OK\r\n\r\nstream of bytes", 2);
  EXPECT_TRUE(c.t.exchanges().empty());
  c.t.on_close(3);
  ASSERT_EQ(c.t.exchanges().size(), 1u);
  EXPECT_EQ(c.t.exchanges()[0].response.body_bytes, 15u);
  EXPECT_EQ(c.t.exchanges()[0].response.last_ts, 3u);
}

TEST(Tracker, RequestWithoutResponseAtCloseIsUnpaired) {
  Conn c(true);
  c.send("GET / HTTP/1.1\r\n\r\n", 1);
  c.t.on_close(2);
  EXPECT_TRUE(c.t.exchanges().empty());
  EXPECT_EQ(c.t.stats().unpaired_requests, 1u);
}

// Security review F9: requests nobody answers were all kept until the close
// (50 000 of 15 KB: +777 MiB). At most kMaxPending wait; the oldest go first
// and their answers, should they come, are not paired with anyone else's request.
TEST(SecurityF9, UnansweredRequestsAreCappedAndNeverMispaired) {
  Conn c(true);
  const int n = 10000;
  const int cap = static_cast<int>(StreamParser::kMaxPending);
  for (int i = 0; i < n; ++i) {
    // Every third one a HEAD: its answer has a Content-Length and no body.
    std::string method = i % 3 == 0 ? "HEAD" : "GET";
    c.send(method + " /r/" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n", i + 1);
  }
  EXPECT_EQ(c.t.stats().unpaired_requests, static_cast<uint64_t>(n - cap));
  for (int i = 0; i < n; ++i)
    c.recv(i % 3 == 0 ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
           n + i + 1);
  auto& x = c.t.exchanges();
  ASSERT_EQ(x.size(), static_cast<size_t>(cap));
  for (int k = 0; k < cap; ++k) EXPECT_EQ(x[k].request.target, "/r/" + std::to_string(n - cap + k));
  EXPECT_EQ(c.t.stats().unpaired_responses, static_cast<uint64_t>(n - cap));
}

// After 101 Switching Protocols the client's bytes are the new protocol, even
// when they look like requests: none is kept waiting for an answer.
TEST(SecurityF9, RequestSideStopsAfterTheResponseTunnels) {
  Conn c(true);
  c.send("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1);
  c.recv("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 2);
  for (int i = 0; i < 1000; ++i) c.send("GET /not-http HTTP/1.1\r\n\r\n", 3 + i);
  c.t.on_close(5000);
  ASSERT_EQ(c.t.exchanges().size(), 1u);
  EXPECT_EQ(c.t.exchanges()[0].response.status, 101);
  EXPECT_EQ(c.t.stats().unpaired_requests, 0u);
}

}  // namespace
}  // namespace vigil::http1
