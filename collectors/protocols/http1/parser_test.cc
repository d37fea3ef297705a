#include "collectors/protocols/http1/parser.h"

#include <gtest/gtest.h>

namespace vigil::http1 {
namespace {

std::vector<Message> feed_all(StreamParser& p, std::initializer_list<std::string_view> chunks) {
  uint64_t ts = 1;
  for (auto c : chunks) p.feed(c, ts++);
  std::vector<Message> out(p.messages().begin(), p.messages().end());
  p.messages().clear();
  return out;
}

TEST(ParseHead, Request) {
  Message m;
  size_t n = 0;
  std::string_view req = "GET /users/42?x=1 HTTP/1.1\r\nHost: api.test\r\nX-A:  b \r\n\r\nrest";
  ASSERT_EQ(parse_head(req, Kind::kRequest, {}, &m, &n), ParseState::kSuccess);
  EXPECT_EQ(n, req.size() - 4);
  EXPECT_EQ(m.method, "GET");
  EXPECT_EQ(m.target, "/users/42?x=1");
  EXPECT_EQ(m.version_minor, 1);
  EXPECT_EQ(m.header("host"), "api.test");
  EXPECT_EQ(m.header("x-a"), "b");
  EXPECT_FALSE(m.connection_close);
}

TEST(ParseHead, StatusLineWithAndWithoutReason) {
  Message m;
  size_t n = 0;
  ASSERT_EQ(parse_head("HTTP/1.1 404 Not Found\r\n\r\n", Kind::kResponse, {}, &m, &n),
            ParseState::kSuccess);
  EXPECT_EQ(m.status, 404);
  ASSERT_EQ(parse_head("HTTP/1.0 200\r\n\r\n", Kind::kResponse, {}, &m, &n), ParseState::kSuccess);
  EXPECT_EQ(m.status, 200);
  EXPECT_TRUE(m.connection_close) << "HTTP/1.0 closes unless keep-alive";
}

TEST(ParseHead, BareLfLineEndings) {
  Message m;
  size_t n = 0;
  ASSERT_EQ(parse_head("GET / HTTP/1.1\nHost: h\n\n", Kind::kRequest, {}, &m, &n), ParseState::kSuccess);
  EXPECT_EQ(m.header("host"), "h");
  EXPECT_EQ(n, 24u);
}

TEST(ParseHead, ObsoleteFoldingJoinsValues) {
  Message m;
  size_t n = 0;
  ASSERT_EQ(parse_head("GET / HTTP/1.1\r\nX-Long: a\r\n  b\r\n\r\n", Kind::kRequest, {}, &m, &n),
            ParseState::kSuccess);
  EXPECT_EQ(m.header("x-long"), "a b");
}

struct HeadCase {
  const char* name;
  std::string input;
  Kind kind;
  ParseState want;
};
void PrintTo(const HeadCase& c, std::ostream* os) { *os << c.name; }

class HeadTable : public ::testing::TestWithParam<HeadCase> {};
TEST_P(HeadTable, State) {
  Message m;
  size_t n = 0;
  EXPECT_EQ(parse_head(GetParam().input, GetParam().kind, {}, &m, &n), GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HeadTable,
    ::testing::Values(
        HeadCase{"Empty", "", Kind::kRequest, ParseState::kNeedsMoreData},
        HeadCase{"PartialMethod", "GE", Kind::kRequest, ParseState::kNeedsMoreData},
        HeadCase{"PartialHeaders", "GET / HTTP/1.1\r\nHost: a\r\n", Kind::kRequest,
                 ParseState::kNeedsMoreData},
        HeadCase{"PartialStatus", "HTTP/1.", Kind::kResponse, ParseState::kNeedsMoreData},
        HeadCase{"TlsClientHello", std::string("\x16\x03\x01\x02\x00\x01", 6), Kind::kRequest,
                 ParseState::kIgnored},
        HeadCase{"BinaryGarbage", std::string("\x00\xff\x10garbage", 10), Kind::kRequest,
                 ParseState::kIgnored},
        HeadCase{"Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Kind::kRequest,
                 ParseState::kInvalid},
        HeadCase{"ResponseNotHttp", "SSH-2.0-OpenSSH\r\n", Kind::kResponse, ParseState::kIgnored},
        HeadCase{"LowercaseMethod", "get / HTTP/1.1\r\n\r\n", Kind::kRequest, ParseState::kIgnored},
        HeadCase{"NoTarget", "GET HTTP/1.1\r\n\r\n", Kind::kRequest, ParseState::kInvalid},
        HeadCase{"BadVersion", "GET / HTTP/3.0\r\n\r\n", Kind::kRequest, ParseState::kInvalid},
        HeadCase{"SpaceInTarget", "GET /a b HTTP/1.1\r\n\r\n", Kind::kRequest, ParseState::kInvalid},
        HeadCase{"ControlCharInTarget", "GET /a\x01 HTTP/1.1\r\n\r\n", Kind::kRequest,
                 ParseState::kInvalid},
        HeadCase{"BadStartLineRejectedEarly", "GET /a b c\r\nHost: x\r\n", Kind::kRequest,
                 ParseState::kInvalid},
        HeadCase{"HeaderWithoutColon", "GET / HTTP/1.1\r\nHost\r\n\r\n", Kind::kRequest,
                 ParseState::kInvalid},
        HeadCase{"HeaderNameWithSpace", "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", Kind::kRequest,
                 ParseState::kInvalid},
        HeadCase{"StatusNotNumeric", "HTTP/1.1 2x0 OK\r\n\r\n", Kind::kResponse, ParseState::kInvalid},
        HeadCase{"StatusTooShort", "HTTP/1.1 20\r\n\r\n", Kind::kResponse, ParseState::kInvalid},
        HeadCase{"OversizedHeaders", "GET / HTTP/1.1\r\nX: " + std::string(20000, 'a'),
                 Kind::kRequest, ParseState::kInvalid},
        HeadCase{"TooManyHeaders", [] {
                   std::string s = "GET / HTTP/1.1\r\n";
                   for (int i = 0; i < 101; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
                   return s + "\r\n";
                 }(), Kind::kRequest, ParseState::kInvalid}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Stream, RequestSplitByteByByte) {
  StreamParser p(Kind::kRequest);
  std::string req = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t i = 0; i < req.size(); ++i) p.feed(std::string_view(req).substr(i, 1), 100 + i);
  ASSERT_EQ(p.messages().size(), 1u);
  const Message& m = p.messages().front();
  EXPECT_EQ(m.method, "POST");
  EXPECT_EQ(m.target, "/submit");
  EXPECT_EQ(m.body_bytes, 5u);
  EXPECT_EQ(m.first_ts, 100u);
  EXPECT_EQ(m.last_ts, 100u + req.size() - 1);
}

TEST(Stream, ThreePipelinedRequestsInOneWrite) {
  StreamParser p(Kind::kRequest);
  auto msgs = feed_all(p, {"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                           "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
                           "GET /c HTTP/1.1\r\n\r\n"});
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].target, "/a");
  EXPECT_EQ(msgs[1].target, "/b");
  EXPECT_EQ(msgs[1].body_bytes, 3u);
  EXPECT_EQ(msgs[2].target, "/c");
}

// Issue 14: empty lines before a request (RFC 9112 §2.2) and stray CRLFs between
// pipelined responses are skipped, not taken for garbage.
TEST(Stream, EmptyLinesBeforeMessagesAreSkipped) {
  StreamParser req(Kind::kRequest);
  auto msgs = feed_all(req, {"\r\nGET /a HTTP/1.1\r\n\r\n", "\r\n", "\nGET /b HTTP/1.1\r\n\r\n"});
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].target, "/a");
  EXPECT_EQ(msgs[0].head_bytes, 19u) << "the empty line is not part of the message";
  EXPECT_EQ(msgs[1].target, "/b");
  StreamParser resp(Kind::kResponse);
  msgs = feed_all(resp, {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\r\n"
                         "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"});
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].status, 404);
  EXPECT_EQ(resp.invalid_count(), 0u);
}

TEST(Stream, AnyTokenIsAMethod) {
  StreamParser p(Kind::kRequest);
  auto msgs = feed_all(p, {"REPORT /cal HTTP/1.1\r\n\r\n", "M-SEARCH * HTTP/1.1\r\n\r\n",
                           "QUERY /q HTTP/1.1\r\nContent-Length: 0\r\n\r\n"});
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].method, "REPORT");
  EXPECT_EQ(msgs[1].method, "M-SEARCH");
  EXPECT_EQ(msgs[2].method, "QUERY");
}

TEST(Stream, ChunkedResponseWithExtensionsAndTrailers) {
  StreamParser p(Kind::kResponse);
  p.push_request_method("GET");
  auto msgs = feed_all(p, {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
                           "lo\r\n", "6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                           "HTTP/1.1 204 No Content\r\n\r\n"});
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_TRUE(msgs[0].chunked);
  EXPECT_EQ(msgs[0].body_bytes, 11u);
  EXPECT_EQ(msgs[0].first_ts, 1u);
  EXPECT_EQ(msgs[0].last_ts, 3u);
  EXPECT_EQ(msgs[1].status, 204);
}

TEST(Stream, HeadResponseHasNoBodyDespiteContentLength) {
  StreamParser p(Kind::kResponse);
  p.push_request_method("HEAD");
  p.push_request_method("GET");
  auto msgs = feed_all(p, {"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"});
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].body_bytes, 0u);
  EXPECT_EQ(msgs[1].body_bytes, 2u);
}

TEST(Stream, InterimResponsesAreNotAnswers) {
  StreamParser p(Kind::kResponse);
  p.push_request_method("POST");
  p.push_request_method("GET");
  auto msgs = feed_all(p, {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"});
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].status, 201);
  EXPECT_EQ(msgs[0].interim, 1);  // counted on the final response it preceded
  EXPECT_EQ(msgs[1].interim, 0);
}

TEST(Stream, NoBodyFor204And304) {
  StreamParser p(Kind::kResponse);
  auto msgs = feed_all(p, {"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
                           "HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"});
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].body_bytes, 0u);
  EXPECT_EQ(msgs[2].body_bytes, 1u);
}

TEST(Stream, BodyUntilCloseCompletesAtEnd) {
  StreamParser p(Kind::kResponse);
  p.feed("HTTP/1.0 200 OK\r\n\r\npart1", 1);
  p.feed("part2", 2);
  EXPECT_TRUE(p.messages().empty());
  p.end(3);
  ASSERT_EQ(p.messages().size(), 1u);
  EXPECT_EQ(p.messages().front().body_bytes, 10u);
  EXPECT_TRUE(p.messages().front().connection_close);
}

TEST(Stream, ConnectionCloseHeader) {
  StreamParser p(Kind::kRequest);
  auto msgs = feed_all(p, {"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n"});
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].connection_close);
}

TEST(Stream, MalformedRequestResyncsAtTheNextMessage) {
  StreamParser p(Kind::kRequest);
  auto msgs = feed_all(p, {"GET / HTTP/1.1\r\n\r\n", "GET /a b c d\r\n\r\n", "junk after",
                           "GET /ok HTTP/1.1\r\n\r\n"});
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].target, "/ok");
  EXPECT_EQ(p.invalid_count(), 1u);
}

TEST(Stream, NonHttpConnectionIsIgnoredForGood) {
  StreamParser p(Kind::kRequest);
  p.feed(std::string("\x16\x03\x01\x00\x10", 5), 1);
  EXPECT_TRUE(p.ignored());
  p.feed("GET / HTTP/1.1\r\n\r\n", 2);
  EXPECT_TRUE(p.messages().empty());
}

TEST(Stream, ResponseWithoutRequestIsParsed) {
  StreamParser p(Kind::kResponse);
  auto msgs = feed_all(p, {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"});
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].status, 200);
}

TEST(Stream, GapInsideBodyIsCountedAndFlagged) {
  StreamParser p(Kind::kResponse);
  p.feed("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 1);
  p.feed(std::string(16384, 'a'), 2);
  p.gap(100000 - 16384, 2);
  p.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 3);
  ASSERT_EQ(p.messages().size(), 2u);
  EXPECT_EQ(p.messages()[0].body_bytes, 100000u);
  EXPECT_TRUE(p.messages()[0].truncated);
  EXPECT_FALSE(p.messages()[1].truncated);
}

TEST(Stream, GapPastTheBodyResyncsWithoutInventingMessages) {
  StreamParser p(Kind::kRequest);
  p.feed("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345", 1);
  p.gap(500, 2);  // rest of the body and the next request's head
  p.feed("tail of a lost request body", 3);
  p.feed("GET /next HTTP/1.1\r\n\r\n", 4);
  ASSERT_EQ(p.messages().size(), 2u);
  EXPECT_TRUE(p.messages()[0].truncated);
  EXPECT_EQ(p.messages()[1].target, "/next");
}

TEST(Stream, GapInHeadDropsThatMessage) {
  StreamParser p(Kind::kRequest);
  p.feed("GET /lost HTTP/1.1\r\nHo", 1);
  p.gap(30, 2);
  p.feed("GET /seen HTTP/1.1\r\n\r\n", 3);
  ASSERT_EQ(p.messages().size(), 1u);
  EXPECT_EQ(p.messages()[0].target, "/seen");
}

TEST(Stream, SwitchingProtocolsEndsHttp) {
  StreamParser p(Kind::kResponse);
  p.push_request_method("GET");
  auto msgs = feed_all(p, {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                           std::string("\x81\x05hello", 7)});
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].status, 101);
}

TEST(Stream, KeepsACappedBodyPrefix) {
  StreamParser p(Kind::kRequest, Limits{.body_keep = 4});
  auto msgs = feed_all(p, {"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123", "456789"});
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].body, "0123");
}

TEST(Stream, BadContentLengthIsInvalid) {
  StreamParser p(Kind::kRequest);
  p.feed("POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", 1);
  EXPECT_TRUE(p.messages().empty());
  EXPECT_EQ(p.invalid_count(), 1u);
}

}  // namespace
}  // namespace vigil::http1
