// events.api_call levels: which api_call events are shipped, while every call
// is still paired, counted and shown to the inventory (issue 28, item 3).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <set>

#include "agent/config/config.h"
#include "agent/events/emission.h"
#include "agent/events/event_mapper.h"

namespace vigil {
namespace {

// One server connection fed fabricated HTTP/1 data records.
class EmissionTest : public ::testing::Test {
 protected:
  void start(ApiCallSampler::Options o) {
    mapper_ = std::make_unique<EventMapper>(procs_, conns_, clock_, "n", ApiCallOptions{}, 0, o);
    // Stands in for the inventory: a path's first call is notable; /users carries email.
    mapper_->set_call_observer([this](const protocols::Exchange&, const ProcessRef&, ApiCallEvent& call, uint64_t) {
      ++observed_;
      if (call.request.path == "/users") call.sensitive = {"email"};
      return static_cast<uint8_t>(seen_.insert(call.request.path).second ? kNotableFirst : 0);
    });
  }

  void data(bool egress, std::string_view bytes) {
    auto e = std::make_unique<vigil_data_event>();
    e->hdr.type = VIGIL_EV_DATA;
    e->hdr.pid = 100;
    e->hdr.tid = 100;
    e->hdr.ts_ns = ++ts_;
    std::strcpy(e->hdr.comm, "api");
    e->conn_id = 42;
    uint64_t& off = egress ? tx_ : rx_;
    e->offset = off;
    e->length = e->captured = static_cast<uint32_t>(bytes.size());
    off += bytes.size();
    e->fd = 5;
    e->direction = egress ? VIGIL_DIR_EGRESS : VIGIL_DIR_INGRESS;
    e->role = VIGIL_ROLE_SERVER;
    e->l7 = VIGIL_L7_HTTP1;
    std::memcpy(e->data, bytes.data(), bytes.size());
    mapper_->handle(*e, [this](Event&& ev) { out_.push_back(std::move(ev)); });
  }

  void call(std::string_view path, int status) {
    data(false, fmt::format("GET {} HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer s3cr3t\r\n\r\n", path));
    data(true, fmt::format("HTTP/1.1 {} X\r\nContent-Length: 0\r\n\r\n", status));
  }

  std::vector<std::pair<std::string, int>> shipped() const {
    std::vector<std::pair<std::string, int>> r;
    for (const auto& e : out_)
      if (const auto* c = std::get_if<ApiCallEvent>(&e.body)) r.emplace_back(c->request.path, c->response.status);
    return r;
  }

  ProcessTable procs_{"/nonexistent", nullptr};
  ConnectionTable conns_;
  BootClock clock_;
  std::unique_ptr<EventMapper> mapper_;
  std::vector<Event> out_;
  std::set<std::string> seen_;
  uint64_t ts_ = 1'000'000'000, tx_ = 0, rx_ = 0;
  int observed_ = 0;
};

TEST_F(EmissionTest, AllShipsEveryCall) {
  start({});
  for (int i = 0; i < 5; ++i) call("/a", 200);
  EXPECT_EQ(shipped().size(), 5u);
  EXPECT_EQ(mapper_->emission().skipped(), 0u);
  EXPECT_EQ(mapper_->http_stats().api_calls, 5u);
}

TEST_F(EmissionTest, NotableShipsFirstCallsErrorsAuthFailuresAndSensitiveData) {
  start({.mode = ApiCallEmission::kNotable});
  call("/a", 200);      // first of /a
  call("/a", 200);      // not notable
  call("/a", 503);      // server error
  call("/a", 401);      // auth failure
  call("/a", 404);      // not notable
  call("/b", 200);      // first of /b
  call("/users", 200);  // first, and sensitive
  call("/users", 200);  // sensitive
  call("/a", 200);      // not notable
  using P = std::pair<std::string, int>;
  EXPECT_EQ(shipped(), (std::vector<P>{{"/a", 200}, {"/a", 503}, {"/a", 401}, {"/b", 200}, {"/users", 200},
                                       {"/users", 200}}));
  // Every call was paired, counted and shown to the inventory.
  EXPECT_EQ(mapper_->http_stats().api_calls, 9u);
  EXPECT_EQ(observed_, 9);
  EXPECT_EQ(mapper_->emission().shipped(), 6u);
  EXPECT_EQ(mapper_->emission().skipped(), 3u);
  // A shipped event is whole: its headers were added (and redacted) after the decision.
  const auto& first = std::get<ApiCallEvent>(out_[0].body);
  ASSERT_EQ(first.request.headers.size(), 2u);
  EXPECT_EQ(first.request.headers[1].second, "[redacted]");
}

TEST_F(EmissionTest, SampledShipsNotableCallsAndOneInN) {
  start({.mode = ApiCallEmission::kSampled, .sample_every = 3});
  call("/a", 200);                          // first
  for (int i = 0; i < 9; ++i) call("/a", 200);  // 3 of these 9
  call("/a", 500);                          // notable
  EXPECT_EQ(shipped().size(), 5u);
  EXPECT_EQ(mapper_->emission().skipped(), 6u);
  EXPECT_EQ(mapper_->http_stats().api_calls, 11u);
}

TEST(EmissionReasons, GrpcStatusesCount) {
  ApiCallEvent c;
  c.response.status = 200;
  EXPECT_EQ(notable_reasons(c, 0), 0);
  c.grpc = ApiCallEvent::Grpc{"svc", "M", 16};
  EXPECT_EQ(notable_reasons(c, 0), kNotableAuthFailure);
  c.grpc->status = 14;
  EXPECT_EQ(notable_reasons(c, kNotableFinding), kNotableServerError | kNotableFinding);
}

TEST(EmissionConfig, LevelsParseAndBadValuesNameTheKey) {
  auto d = parse_config("", "x.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->events.api_call, "all");
  EXPECT_EQ(d->events.api_call_sample_every, 100u);
  auto n = parse_config("events:\n  api_call: notable\n  api_call_sample_every: 10\n", "x.yaml");
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(parse_api_call_emission(n->events.api_call), ApiCallEmission::kNotable);
  EXPECT_EQ(n->events.api_call_sample_every, 10u);
  auto bad = parse_config("events:\n  api_call: some\n", "x.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("x.yaml:2:13: 'events.api_call' must be all, sampled or notable, not 'some'"),
            std::string::npos)
      << bad.error().message;
  auto zero = parse_config("events:\n  api_call_sample_every: 0\n", "x.yaml");
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("'events.api_call_sample_every' must be at least 1"), std::string::npos);
}

}  // namespace
}  // namespace vigil
