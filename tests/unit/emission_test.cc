// events.api_call levels: which api_call events are shipped, while every call
// is still paired, counted and shown to the inventory (issue 28, item 3); and
// capture levels: how much of each call is looked at and shipped (item 2).
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
    observe();
  }
  // No inventory: the mapper asks the capture policy with the call's path.
  void start_capture(CaptureOptions c) {
    mapper_ = std::make_unique<EventMapper>(procs_, conns_, clock_, "n", ApiCallOptions{.bodies = true}, 4096,
                                            ApiCallSampler::Options{}, std::move(c));
  }
  void observe() {
    // Stands in for the inventory: a path's first call is notable; /users carries email.
    mapper_->set_call_observer([this](const protocols::Exchange&, const ProcessRef&, ApiCallEvent& call, uint64_t,
                                      const CaptureScope&) {
      ++observed_;
      if (call.request.path == "/users") call.sensitive = {"email"};
      return CallOutcome{static_cast<uint8_t>(seen_.insert(call.request.path).second ? kNotableFirst : 0),
                         CaptureLevel::kHeaders};
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

const ApiCallEvent& call_of(const Event& e) { return std::get<ApiCallEvent>(e.body); }

// One connection whose calls change level from one call to the next (endpoint
// rules), pipelined requests among them: every call is shipped once, in order,
// with what its level looked at.
TEST_F(EmissionTest, CaptureLevelsSwitchPerCallOnOneConnection) {
  CaptureOptions c{.level = CaptureLevel::kHeaders, .full_first = 0, .full_sample_every = 0};
  c.rules.push_back({.level = CaptureLevel::kMetadata, .endpoints = {"/meta*"}});
  c.rules.push_back({.level = CaptureLevel::kFull, .endpoints = {"POST /full*"}});
  start_capture(std::move(c));
  auto req = [](std::string_view method, std::string_view path) {
    return fmt::format("{} {} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n"
                       "{{\"a\":\"b\"}}", method, path);
  };
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"c\":1}";
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"POST", "/meta/1"}, {"POST", "/hdr"}, {"POST", "/full/1"}, {"GET", "/full/2"}, {"POST", "/meta/2"}};
  for (const auto& [m, p] : calls) {
    data(false, req(m, p));
    data(true, resp);
  }
  // Pipelined: two requests in one read, both answers in one write.
  data(false, req("POST", "/full/3") + req("POST", "/meta/3"));
  data(true, resp + resp);
  ASSERT_EQ(out_.size(), 7u);
  std::vector<std::string> paths;
  for (const auto& e : out_) paths.push_back(call_of(e).request.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"/meta/1", "/hdr", "/full/1", "/full/2", "/meta/2", "/full/3", "/meta/3"}));
  for (const auto& e : out_) {
    const ApiCallEvent& a = call_of(e);
    const bool meta = a.request.path.starts_with("/meta"), full = a.request.path.starts_with("/full") &&
                                                                 a.request.method == "POST";
    EXPECT_EQ(a.request.headers.empty(), meta) << a.request.path;
    EXPECT_EQ(a.response.headers.empty(), meta) << a.request.path;
    EXPECT_EQ(a.request_body.has_value() && !a.request_body->empty(), full) << a.request.path;
    EXPECT_EQ(a.response.status, 200);
    EXPECT_EQ(a.req_bytes, req(a.request.method, a.request.path).size()) << a.request.path;  // every level
    EXPECT_EQ(a.resp_bytes, resp.size()) << a.request.path;                                 // counts every byte
  }
  const auto& n = mapper_->capture().counts();
  EXPECT_EQ(n[0], 3u);
  EXPECT_EQ(n[1], 2u);
  EXPECT_EQ(n[2], 2u);
}

TEST(CapturePolicy, FirstMatchingRuleWinsAndEndpointRulesWaitForTheTemplate) {
  CaptureOptions o{.level = CaptureLevel::kHeaders, .full_first = 0, .full_sample_every = 0};
  o.rules.push_back({.level = CaptureLevel::kFull, .comms = {"pay*"}, .endpoints = {"/charge/*"}});
  o.rules.push_back({.level = CaptureLevel::kMetadata, .ports = {8080}});
  o.rules.push_back({.level = CaptureLevel::kFull, .binaries = {"/usr/bin/*"}});
  const CapturePolicy p(o);
  ProcessRef pay{.comm = "payments", .exe = "/opt/pay"}, tool{.comm = "curl", .exe = "/usr/bin/curl"};
  ConnRef server{.role = "server", .local = {"127.0.0.1", 8080}, .remote = {"127.0.0.1", 5555}};
  ConnRef client{.role = "client", .local = {"127.0.0.1", 5555}, .remote = {"127.0.0.1", 443}};
  CaptureScope s = p.for_connection(pay, server);
  EXPECT_EQ(s.level, CaptureLevel::kMetadata) << "the port rule; the endpoint rule before it waits";
  EXPECT_EQ(p.for_call(s, "POST", "/charge/{id}", 0), CaptureLevel::kFull);
  EXPECT_EQ(p.for_call(s, "POST", "/refund/{id}", 0), CaptureLevel::kMetadata);
  EXPECT_EQ(p.for_connection(tool, client).level, CaptureLevel::kFull) << "the client side's port is the remote's";
  EXPECT_EQ(p.for_connection(tool, server).level, CaptureLevel::kMetadata);
  EXPECT_EQ(p.for_connection(pay, client).level, CaptureLevel::kHeaders) << "no rule: capture.level";
  EXPECT_TRUE(p.may_be_full());
  EXPECT_FALSE(CapturePolicy({.level = CaptureLevel::kMetadata}).may_be_full());
  EXPECT_FALSE(CapturePolicy({.level = CaptureLevel::kHeaders, .full_first = 0, .full_sample_every = 0}).may_be_full());
  EXPECT_TRUE(CapturePolicy(CaptureOptions{}).may_be_full()) << "the default samples in full";
}

TEST(CaptureConfig, LevelsAndRulesParseAndBadOnesNameTheKey) {
  auto d = parse_config(default_config_yaml(), "<default>");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->capture.level, CaptureLevel::kHeaders);
  EXPECT_EQ(d->capture.full_first, 20u);
  EXPECT_EQ(d->capture.full_sample_every, 100u);
  EXPECT_TRUE(d->capture.rules.empty());
  auto c = parse_config("capture:\n  level: metadata\n  full_sample_every: 0\n  rules:\n"
                        "    - {level: full, comms: [pay*], ports: [8443], endpoints: ['POST /charge/*']}\n"
                        "    - {level: headers, uids: [1001], cgroups: [/system.slice/*]}\n",
                        "x.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->capture.level, CaptureLevel::kMetadata);
  EXPECT_EQ(c->capture.full_sample_every, 0u);
  ASSERT_EQ(c->capture.rules.size(), 2u);
  EXPECT_EQ(c->capture.rules[0].level, CaptureLevel::kFull);
  EXPECT_EQ(c->capture.rules[0].ports, (std::vector<uint16_t>{8443}));
  EXPECT_EQ(c->capture.rules[0].endpoints, (std::vector<std::string>{"POST /charge/*"}));
  EXPECT_EQ(c->capture.rules[1].uids, (std::vector<uint32_t>{1001}));
  auto fails = [](const std::string& yaml) {
    auto r = parse_config(yaml, "x.yaml");
    return r.ok() ? std::string("(accepted)") : r.error().message;
  };
  EXPECT_NE(fails("capture:\n  level: bodies\n").find("x.yaml:2:10: 'capture.level' must be metadata, headers or full"),
            std::string::npos);
  EXPECT_NE(fails("capture:\n  rules:\n    - {comms: [a]}\n").find("'capture.rules[0].level' is required"),
            std::string::npos);
  EXPECT_NE(fails("capture:\n  rules:\n    - {level: full}\n").find("'capture.rules[0]' selects nothing"),
            std::string::npos);
  EXPECT_NE(fails("capture:\n  rules:\n    - {level: full, ports: [70000]}\n")
                .find("'capture.rules[0].ports' has port 70000"),
            std::string::npos);
  EXPECT_NE(fails("capture:\n  rules:\n    - {level: full, endpoints: [users]}\n")
                .find("'capture.rules[0].endpoints' has 'users'"),
            std::string::npos);
  EXPECT_NE(fails("capture:\n  rules:\n    - {level: full, binary: [/x]}\n")
                .find("x.yaml:3:21: unknown key 'capture.rules[0].binary'"),
            std::string::npos);
  std::string many = "capture:\n  rules:\n";
  for (int i = 0; i < 65; ++i) many += "    - {level: full, uids: [1]}\n";
  EXPECT_NE(fails(many).find("'capture.rules' has 65 rules; at most 64"), std::string::npos);
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
