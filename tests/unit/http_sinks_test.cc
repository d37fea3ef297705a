// The HTTP sinks' pieces: URL parsing, Retry-After, what a response means for a
// batch, the OTLP JSON shape, gzip, and the client against servers that answer
// chunked, close kept-alive connections or send garbage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/sinks/http_outputs.h"
#include "agent/sinks/sinks.h"

namespace vigil::sinks {
namespace {

TEST(Url, ParsesSchemesHostsPortsAndPaths) {
  auto u = Url::parse("https://siem.example/ingest?x=1");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "siem.example");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->path, "/ingest?x=1");
  EXPECT_EQ(u->authority, "siem.example");
  u = Url::parse("http://[::1]:4318");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "4318");
  EXPECT_EQ(u->path, "/");
  EXPECT_EQ(u->authority, "[::1]:4318");
  for (const char* bad : {"ftp://x", "http://", "http://h:0/", "http://h:99999", "http://u:p@h/", "http://[::1/"}) {
    EXPECT_FALSE(Url::parse(bad)) << bad;
  }
  EXPECT_NE(Url::parse("http://h:x/").error().message.find("port 'x'"), std::string::npos);
  EXPECT_EQ(otlp_logs_url("http://c:4318/"), "http://c:4318/v1/logs");
}

TEST(RetryAfter, TakesSecondsOrAnHttpDate) {
  EXPECT_EQ(parse_retry_after("120", 0), 120);
  EXPECT_EQ(parse_retry_after(" 3 ", 0), 3);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0);  // already past
  EXPECT_EQ(parse_retry_after("soon", 0), -1);
  EXPECT_EQ(parse_retry_after("", 0), -1);
  EXPECT_EQ(parse_retry_after("-5", 0), -1);
}

TEST(HttpDelivery, TwoHundredsAckRetryablesWaitOtherStatusesDropWithTheReason) {
  Url url = *Url::parse("http://127.0.0.1:1/x");
  auto resp = [](int status, std::string body = "", int64_t retry = -1) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.retry_after_s = retry;
    return Result<HttpResponse>(r);
  };
  Delivery d = delivery_of(resp(204), 5, url);
  EXPECT_EQ(d.delivered, 5u);
  EXPECT_TRUE(d.error.empty());
  d = delivery_of(resp(503, "busy\n", 7), 5, url);
  EXPECT_EQ(d.delivered + d.rejected, 0u);
  EXPECT_EQ(d.retry_after_ns, 7'000'000'000ull);
  EXPECT_NE(d.error.find("HTTP 503: busy"), std::string::npos);
  d = delivery_of(resp(429), 5, url);
  EXPECT_FALSE(d.error.empty());
  d = delivery_of(resp(413, "too large"), 5, url);
  EXPECT_EQ(d.rejected, 5u);
  EXPECT_NE(d.reason.find("HTTP 413: too large"), std::string::npos);
  d = delivery_of(Result<HttpResponse>(Error{"connect to 127.0.0.1:1: ECONNREFUSED"}), 5, url);
  EXPECT_EQ(d.delivered + d.rejected, 0u);
  EXPECT_NE(d.error.find("ECONNREFUSED"), std::string::npos);
}

Record record(uint64_t seq, std::string line, uint8_t sev = kSevInfo) {
  Record r;
  r.seq = seq;
  r.time_ns = 1'700'000'000'123'456'789ull;
  r.kind = static_cast<uint8_t>(event_kind_index("egress"));
  r.severity = sev;
  r.line = std::move(line);
  return r;
}

TEST(Otlp, EachRecordIsALogRecordWithItsFieldsAsTypedAttributes) {
  std::vector<Record> batch = {
      record(7, R"({"kind":"egress","seq":7,"big":18446744073709551615,"neg":-3,"ratio":0.5,"ok":false,)"
                R"("none":null,"tags":["a",1],"process":{"pid":42,"comm":"curl"}})", kSevHigh)};
  HttpSinkOptions o;
  o.node = "node-a";
  o.boot_id = "b-1";
  o.k8s_node = "k-node";
  auto j = nlohmann::json::parse(otlp_logs_json(batch, o, 1'700'000'001'000'000'000ull));
  const auto& rl = j["resourceLogs"][0];
  std::map<std::string, std::string> res;
  for (const auto& a : rl["resource"]["attributes"]) res[a["key"]] = a["value"]["stringValue"];
  EXPECT_EQ(res["service.name"], "vigil");
  EXPECT_EQ(res["host.name"], "node-a");
  EXPECT_EQ(res["service.instance.id"], "b-1");
  EXPECT_EQ(res["k8s.node.name"], "k-node");
  const auto& lr = rl["scopeLogs"][0]["logRecords"][0];
  EXPECT_EQ(lr["timeUnixNano"], "1700000000123456789");  // int64 as a string
  EXPECT_EQ(lr["observedTimeUnixNano"], "1700000001000000000");
  EXPECT_EQ(lr["severityNumber"], 17);  // ERROR, an integer enum
  EXPECT_EQ(lr["severityText"], "high");
  EXPECT_EQ(lr["body"]["stringValue"], "egress");
  std::map<std::string, nlohmann::json> attrs;
  for (const auto& a : lr["attributes"]) attrs[a["key"]] = a["value"];
  EXPECT_EQ(attrs["seq"], nlohmann::json({{"intValue", "7"}}));
  EXPECT_EQ(attrs["big"], nlohmann::json({{"stringValue", "18446744073709551615"}}));  // beyond int64
  EXPECT_EQ(attrs["neg"], nlohmann::json({{"intValue", "-3"}}));
  EXPECT_EQ(attrs["ratio"], nlohmann::json({{"doubleValue", 0.5}}));
  EXPECT_EQ(attrs["ok"], nlohmann::json({{"boolValue", false}}));
  EXPECT_FALSE(attrs.count("none"));
  EXPECT_EQ(attrs["tags"]["arrayValue"]["values"][1], nlohmann::json({{"intValue", "1"}}));
  EXPECT_EQ(attrs["process"]["kvlistValue"]["values"][1]["key"], "comm");
}

TEST(Gzip, RoundTripsThroughZlib) {
  std::string in;
  for (int i = 0; i < 1000; ++i) in += R"({"kind":"connection","seq":)" + std::to_string(i) + "}\n";
  std::string gz = gzip_compress(in);
  ASSERT_GT(gz.size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_LT(gz.size(), in.size() / 4);
  z_stream z{};
  inflateInit2(&z, 15 + 16);
  std::string out(in.size() + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(gz.data());
  z.avail_in = static_cast<uInt>(gz.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  EXPECT_EQ(out, in);
}

// A loopback server that runs `serve` on each accepted connection, one at a time.
class TinyServer {
 public:
  explicit TinyServer(std::function<void(int fd, int nth)> serve) : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 8);
    thread_ = std::thread([this] {
      for (int n = 0;; ++n) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) {
          if (c >= 0) ::close(c);
          return;
        }
        serve_(c, n);
        ::close(c);
      }
    });
  }
  ~TinyServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/in"; }

 private:
  std::function<void(int, int)> serve_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Reads one request (head and Content-Length body); returns it, "" at EOF.
std::string read_request(int fd) {
  std::string in;
  char buf[4096];
  for (;;) {
    size_t head = in.find("\r\n\r\n");
    if (head != std::string::npos) {
      size_t cl = in.find("Content-Length: ");
      size_t len = cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
      if (in.size() >= head + 4 + len) return in;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return "";
    in.append(buf, static_cast<size_t>(n));
  }
}

void send_all(int fd, std::string_view s) { (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

HttpClient client_for(const std::string& url) {
  HttpClientOptions o;
  o.url = *Url::parse(url);
  o.timeout_ns = 2'000'000'000;
  o.headers = {{"Authorization", "Bearer t"}};
  return HttpClient(o);
}

TEST(HttpClient, ReadsChunkedAnswersAndSendsTheConfiguredHeaders) {
  std::string seen;
  TinyServer srv([&](int fd, int) {
    seen = read_request(fd);
    send_all(fd, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 9\r\nTransfer-Encoding: chunked\r\n"
                 "Content-Type: text/plain\r\n\r\n5\r\nslow \r\n4\r\ndown\r\n0\r\n\r\n");
  });
  HttpClient c = client_for(srv.url());
  auto r = c.post("application/json", "gzip", "[1]");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->body, "slow down");
  EXPECT_EQ(r->retry_after_s, 9);
  EXPECT_EQ(r->content_type, "text/plain");
  EXPECT_NE(seen.find("POST /in HTTP/1.1\r\n"), std::string::npos);
  EXPECT_NE(seen.find("Host: 127.0.0.1:"), std::string::npos);
  EXPECT_NE(seen.find("Content-Encoding: gzip\r\n"), std::string::npos);
  EXPECT_NE(seen.find("Authorization: Bearer t\r\n"), std::string::npos);
  EXPECT_TRUE(seen.ends_with("\r\n\r\n[1]"));
}

TEST(HttpClient, AKeptAliveConnectionTheServerClosedIsRedialledOnce) {
  std::atomic<int> connections{0};
  TinyServer srv([&](int fd, int) {
    ++connections;
    // Answers one request, keep-alive, then closes without saying so.
    if (read_request(fd).empty()) return;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    usleep(50'000);
  });
  HttpClient c = client_for(srv.url());
  for (int i = 0; i < 3; ++i) {
    auto r = c.post("application/json", "", "[]");
    ASSERT_TRUE(r) << i << ": " << r.error().message;
    EXPECT_EQ(r->status, 200);
    usleep(100'000);  // the server has closed by now
  }
  EXPECT_EQ(connections.load(), 3);
}

TEST(HttpClient, GarbageOrACutAnswerIsAnErrorNamingThePeer) {
  TinyServer srv([&](int fd, int nth) {
    if (read_request(fd).empty()) return;
    if (nth == 0) send_all(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    if (nth == 1) send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  });
  HttpClient c = client_for(srv.url());
  auto r = c.post("application/json", "", "[]");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("malformed HTTP response"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("127.0.0.1:"), std::string::npos);
  r = c.post("application/json", "", "[]");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("closed before a whole response"), std::string::npos) << r.error().message;
}

TEST(HttpSinks, OpenChecksTlsFilesAndUrlsUpFront) {
  HttpSinkOptions o;
  o.url = "https://127.0.0.1:1/x";
  o.tls.ca_file = "/nonexistent/ca.pem";
  auto w = WebhookOutput::create(o);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("/nonexistent/ca.pem"), std::string::npos) << w.error().message;
  o.url = "http://127.0.0.1:1/x";  // a CA for a plain URL is a mistake worth naming
  w = WebhookOutput::create(o);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("not https://"), std::string::npos);
  o.tls = {};
  o.url = "127.0.0.1:4318";
  auto t = OtlpOutput::create(o);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("http:// or https://"), std::string::npos);
}

// Security review F20: "Retry-After: 99999999999" muted a sink for centuries;
// webhook URLs with a secret in the path or query went to logs and status.
TEST(SecurityF20, RetryAfterIsClampedAndUrlsAreShownWithoutTheirSecrets) {
  EXPECT_EQ(parse_retry_after("99999999999", 0), kMaxRetryAfterS);
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 1700000000), kMaxRetryAfterS);
  HttpResponse busy;
  busy.status = 503;
  busy.retry_after_s = parse_retry_after("9223372036854775807", 0);
  auto url = Url::parse("https://hooks.example/services/T0ABC/B0DEF/Xy12ab34Cd56ef78Gh90ij12?token=s3cr3t");
  ASSERT_TRUE(url);
  Delivery d = delivery_of(Result<HttpResponse>(busy), 1, *url);
  EXPECT_EQ(d.retry_after_ns, uint64_t(kMaxRetryAfterS) * 1'000'000'000ull);
  EXPECT_EQ(url->text, "https://hooks.example/services/T0ABC/B0DEF/[redacted]?[redacted]");
  EXPECT_EQ(d.error.find("s3cr3t"), std::string::npos) << d.error;
  EXPECT_EQ(d.error.find("Xy12ab34Cd56ef78Gh90ij12"), std::string::npos) << d.error;
  HttpSinkOptions o;
  o.url = "https://127.0.0.1:1/ingest?key=s3cr3t";
  auto w = WebhookOutput::create(o);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_EQ((*w)->describe(), "webhook https://127.0.0.1:1/ingest?[redacted]");
}

}  // namespace
}  // namespace vigil::sinks
