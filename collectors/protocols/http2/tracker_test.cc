// HTTP/2 tracker: header blocks are built with nghttp2's own HPACK deflater,
// so the tests exercise real encodings (static and dynamic table entries).
#include "collectors/protocols/http2/tracker.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace vigil::http2 {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string frame(uint8_t type, uint8_t flags, uint32_t sid, std::string_view payload) {
  std::string f;
  uint32_t len = static_cast<uint32_t>(payload.size());
  f += static_cast<char>(len >> 16);
  f += static_cast<char>(len >> 8);
  f += static_cast<char>(len);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += static_cast<char>(sid >> 24 & 0x7f);
  f += static_cast<char>(sid >> 16);
  f += static_cast<char>(sid >> 8);
  f += static_cast<char>(sid);
  f += payload;
  return f;
}

// One HPACK encoder per direction, as a real peer keeps.
class Encoder {
 public:
  Encoder() { nghttp2_hd_deflate_new(&d_, 4096); }
  ~Encoder() { nghttp2_hd_deflate_del(d_); }
  std::string block(const Headers& h) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [n, v] : h)
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                     NGHTTP2_NV_FLAG_NONE});
    std::string out(nghttp2_hd_deflate_bound(d_, nva.data(), nva.size()), '\0');
    ssize_t n = nghttp2_hd_deflate_hd(d_, reinterpret_cast<uint8_t*>(out.data()), out.size(), nva.data(), nva.size());
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

constexpr uint8_t kData = 0, kHeaders = 1, kRst = 3, kSettings = 4, kContinuation = 9;
constexpr uint8_t kEndStream = 1, kEndHeaders = 4;
const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct Conn {
  Tracker t{/*client_role=*/true};
  Encoder req_enc, resp_enc;
  uint64_t out = 0, in = 0, ts = 1000;
  void send(const std::string& bytes) {  // client -> server (egress of the observed client)
    t.on_data(true, out, bytes.size(), bytes, ts++);
    out += bytes.size();
  }
  void recv(const std::string& bytes) {
    t.on_data(false, in, bytes.size(), bytes, ts++);
    in += bytes.size();
  }
  void start() {
    send(kPreface + frame(kSettings, 0, 0, ""));
    recv(frame(kSettings, 0, 0, ""));
  }
  Headers request(const std::string& method, const std::string& path, Headers extra = {}) {
    Headers h = {{":method", method}, {":scheme", "https"}, {":authority", "api.test"}, {":path", path}};
    h.insert(h.end(), extra.begin(), extra.end());
    return h;
  }
};

TEST(Http2Tracker, OneStreamWithBody) {
  Conn c;
  c.start();
  c.send(frame(kHeaders, kEndHeaders | kEndStream, 1, c.req_enc.block(c.request("GET", "/users/7?x=1"))));
  c.recv(frame(kHeaders, kEndHeaders, 1, c.resp_enc.block({{":status", "200"}, {"content-type", "application/json"}})));
  c.recv(frame(kData, kEndStream, 1, "{\"id\":7}"));
  auto& x = c.t.exchanges();
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0].request.method, "GET");
  EXPECT_EQ(x[0].request.target, "/users/7?x=1");
  EXPECT_EQ(x[0].request.header("host"), "api.test");
  EXPECT_EQ(x[0].request.version_major, 2);
  EXPECT_EQ(x[0].response.status, 200);
  EXPECT_EQ(x[0].response.header("content-type"), "application/json");
  EXPECT_EQ(x[0].response.body_bytes, 8u);
  EXPECT_LT(x[0].request.first_ts, x[0].response.first_ts);
  EXPECT_FALSE(x[0].response.truncated);
}

TEST(Http2Tracker, InterleavedStreamsPairByStreamIdAndDynamicTableCarriesOver) {
  Conn c;
  c.start();
  // The second request reuses dynamic-table entries the first one added.
  c.send(frame(kHeaders, kEndHeaders | kEndStream, 1,
               c.req_enc.block(c.request("GET", "/a", {{"authorization", "Bearer x"}}))));
  c.send(frame(kHeaders, kEndHeaders, 3, c.req_enc.block(c.request("POST", "/b", {{"authorization", "Bearer x"}}))));
  c.send(frame(kData, kEndStream, 3, "payload"));
  c.recv(frame(kHeaders, kEndHeaders | kEndStream, 3, c.resp_enc.block({{":status", "201"}})));
  c.recv(frame(kHeaders, kEndHeaders | kEndStream, 1, c.resp_enc.block({{":status", "404"}})));
  auto& x = c.t.exchanges();
  ASSERT_EQ(x.size(), 2u);
  EXPECT_EQ(x[0].request.target, "/b");
  EXPECT_EQ(x[0].request.body_bytes, 7u);
  EXPECT_EQ(x[0].response.status, 201);
  EXPECT_EQ(x[1].request.target, "/a");
  EXPECT_EQ(x[1].request.header("authorization"), "Bearer x");
  EXPECT_EQ(x[1].response.status, 404);
}

TEST(Http2Tracker, GrpcCallWithTrailers) {
  Conn c;
  c.start();
  c.send(frame(kHeaders, kEndHeaders, 1,
               c.req_enc.block(c.request("POST", "/helloworld.Greeter/SayHello",
                                         {{"content-type", "application/grpc"}, {"te", "trailers"}}))));
  c.send(frame(kData, kEndStream, 1, std::string("\0\0\0\0\x05hello", 10)));
  c.recv(frame(kHeaders, kEndHeaders, 1, c.resp_enc.block({{":status", "200"}, {"content-type", "application/grpc"}})));
  c.recv(frame(kData, 0, 1, std::string("\0\0\0\0\x02hi", 7)));
  c.recv(frame(kHeaders, kEndHeaders | kEndStream, 1, c.resp_enc.block({{"grpc-status", "5"}, {"grpc-message", "nope"}})));
  auto& x = c.t.exchanges();
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0].request.header("content-type"), "application/grpc");
  EXPECT_EQ(x[0].response.header("grpc-status"), "5");
  EXPECT_EQ(x[0].response.body_bytes, 7u);
}

TEST(Http2Tracker, HeaderBlockSplitOverContinuation) {
  Conn c;
  c.start();
  std::string block = c.req_enc.block(c.request("GET", "/split", {{"x-long", std::string(200, 'v')}}));
  c.send(frame(kHeaders, kEndStream, 1, block.substr(0, 10)) + frame(kContinuation, 0, 1, block.substr(10, 50)) +
         frame(kContinuation, kEndHeaders, 1, block.substr(60)));
  c.recv(frame(kHeaders, kEndHeaders | kEndStream, 1, c.resp_enc.block({{":status", "204"}})));
  ASSERT_EQ(c.t.exchanges().size(), 1u);
  EXPECT_EQ(c.t.exchanges()[0].request.header("x-long").size(), 200u);
}

TEST(Http2Tracker, JoinedMidConnectionIsPartialNotGuessed) {
  Tracker t(true);
  Encoder enc;
  enc.block({{":method", "GET"}, {":path", "/warm"}});  // entries the tracker never saw
  std::string late = frame(kHeaders, kEndHeaders | kEndStream, 5, enc.block({{":method", "GET"}, {":path", "/warm"}}));
  t.on_data(true, 0, late.size(), late, 1);
  std::string resp = frame(kHeaders, kEndHeaders | kEndStream, 5, Encoder().block({{":status", "200"}}));
  t.on_data(false, 0, resp.size(), resp, 2);
  t.on_close(3);
  EXPECT_TRUE(t.exchanges().empty());
  EXPECT_GE(t.stats().partial_streams, 1u);
}

TEST(Http2Tracker, GapInsideDataTruncatesGapInFrameHeaderStopsDecoding) {
  Conn c;
  c.start();
  c.send(frame(kHeaders, kEndHeaders | kEndStream, 1, c.req_enc.block(c.request("GET", "/big"))));
  c.recv(frame(kHeaders, kEndHeaders, 1, c.resp_enc.block({{":status", "200"}})));
  std::string data = frame(kData, kEndStream, 1, std::string(1000, 'd'));
  // Only the first 100 bytes of this record were captured.
  c.t.on_data(false, c.in, data.size(), std::string_view(data).substr(0, 100), c.ts++);
  c.in += data.size();
  c.t.tick(UINT64_MAX / 2, 0);
  ASSERT_EQ(c.t.exchanges().size(), 1u);
  EXPECT_TRUE(c.t.exchanges()[0].response.truncated);
  EXPECT_EQ(c.t.exchanges()[0].response.body_bytes, 1000u);

  // A record lost across a frame header: nothing after it is trusted.
  c.send(frame(kHeaders, kEndHeaders | kEndStream, 3, c.req_enc.block(c.request("GET", "/after"))));
  std::string lost = frame(kHeaders, kEndHeaders, 3, c.resp_enc.block({{":status", "200"}}));
  c.in += lost.size();  // never delivered
  c.recv(frame(kData, kEndStream, 3, "x"));
  c.t.tick(UINT64_MAX / 2, 0);
  EXPECT_EQ(c.t.exchanges().size(), 1u);
}

TEST(Http2Tracker, ResetStreamsAreUnpaired) {
  Conn c;
  c.start();
  c.send(frame(kHeaders, kEndHeaders | kEndStream, 1, c.req_enc.block(c.request("GET", "/cancelled"))));
  c.send(frame(kRst, 0, 1, std::string("\0\0\0\x08", 4)));
  c.t.on_close(c.ts);
  EXPECT_TRUE(c.t.exchanges().empty());
  EXPECT_EQ(c.t.stats().unpaired_requests, 1u);
}

TEST(Http2Tracker, GarbageNeverCrashes) {
  Tracker t(false);
  std::string junk = kPreface + std::string("\xff\xff\xff\x01\x05\x00\x00\x00\x01garbage", 16);
  t.on_data(false, 0, junk.size(), junk, 1);
  t.on_data(true, 0, 5, "abcde", 2);
  t.on_close(3);
  EXPECT_TRUE(t.exchanges().empty());
}

long rss_kib() {
  long pages = 0, rss = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    std::fclose(f);
  }
  return rss * 4;
}

// An HPACK integer with an N-bit prefix (RFC 7541 §5.1) after `first`'s flag bits.
std::string hpack_int(uint8_t first, int prefix_bits, size_t v) {
  std::string out;
  size_t max = (1u << prefix_bits) - 1;
  if (v < max) return std::string(1, static_cast<char>(first | v));
  out += static_cast<char>(first | max);
  for (v -= max; v >= 128; v >>= 7) out += static_cast<char>(0x80 | (v & 0x7f));
  out += static_cast<char>(v);
  return out;
}

// Security review F6: one HEADERS block inserts a 4 000-byte :authority into the
// dynamic table, then names it with one byte 50 000 times (200 MB decoded from
// 54 KB; 778 MiB from 204 KB in the review). Decoded bytes count against the
// head limit, pseudo-headers too: the stream is partial, memory stays flat, and
// the table stays in step for the next stream.
TEST(SecurityF6, HpackBombAndContinuationFloodAreBounded) {
  Conn c;
  c.start();
  std::string block = "\x41" + hpack_int(0, 7, 4000) + std::string(4000, 'a');  // :authority, indexed
  block += "\x82\x84\x87";                                                       // GET, /, https
  block.append(50000, '\xbe');                                                    // dynamic entry 62
  long before = rss_kib();
  for (size_t at = 0; at < block.size(); at += 16000) {  // HEADERS, then CONTINUATION frames
    std::string part = block.substr(at, 16000);
    bool last = at + 16000 >= block.size();
    c.send(frame(at == 0 ? kHeaders : kContinuation, (at == 0 ? kEndStream : 0) | (last ? kEndHeaders : 0), 1, part));
  }
  c.recv(frame(kHeaders, kEndHeaders | kEndStream, 1, c.resp_enc.block({{":status", "200"}})));
  EXPECT_LT(rss_kib() - before, 16 * 1024) << "KiB grown";
  EXPECT_TRUE(c.t.exchanges().empty());
  EXPECT_EQ(c.t.stats().partial_streams, 1u);
  // The same table entry, once: a normal request, decoded right.
  c.send(frame(kHeaders, kEndHeaders | kEndStream, 3, std::string("\x82\x84\x87\xbe")));
  c.recv(frame(kHeaders, kEndHeaders | kEndStream, 3, c.resp_enc.block({{":status", "204"}})));
  ASSERT_EQ(c.t.exchanges().size(), 1u);
  EXPECT_EQ(c.t.exchanges()[0].request.header("host"), std::string(4000, 'a'));
  // CONTINUATION frames without end: 32 MB of small literal fields. The block is
  // decoded as it comes, never held whole.
  std::string field = std::string(1, '\0') + hpack_int(0, 7, 3) + "x-a" + hpack_int(0, 7, 8) + "12345678";
  std::string chunk;
  while (chunk.size() + field.size() <= 16000) chunk += field;
  before = rss_kib();
  c.send(frame(kHeaders, kEndStream, 5, "\x82\x84\x87"));
  for (int i = 0; i < 2000; ++i) c.send(frame(kContinuation, 0, 5, chunk));
  EXPECT_LT(rss_kib() - before, 8 * 1024) << "KiB grown";
  c.send(frame(kContinuation, kEndHeaders, 5, ""));
  c.recv(frame(kHeaders, kEndHeaders | kEndStream, 5, c.resp_enc.block({{":status", "200"}})));
  EXPECT_EQ(c.t.exchanges().size(), 1u);  // stream 5: partial, not reported
  EXPECT_EQ(c.t.stats().partial_streams, 2u);
}

}  // namespace
}  // namespace vigil::http2
