// The inventory's parts: templates (every trap of issue 10), detectors with valid
// and invalid checksums, JWT parsing, sketch accuracy, schema inference, risk,
// merge, the SQLite store, and the inventory's noise, findings and bounds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>

#include "agent/apimap/auth.h"
#include "agent/apimap/inventory.h"
#include "agent/apimap/openapi.h"
#include "agent/apimap/schema.h"
#include "agent/apimap/sensitive.h"
#include "agent/apimap/sketch.h"
#include "agent/apimap/spec.h"
#include "agent/apimap/store.h"
#include "agent/apimap/template.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace vigil::apimap {
namespace {

struct Case {
  const char* path;
  const char* want;
};

class TemplateTable : public ::testing::TestWithParam<Case> {};

TEST_P(TemplateTable, OneSample) {
  Templater t;
  EXPECT_EQ(t.apply("svc", GetParam().path, true).path, GetParam().want) << GetParam().path;
}

INSTANTIATE_TEST_SUITE_P(
    Apimap, TemplateTable,
    ::testing::Values(
        Case{"/users/42", "/users/{userId}"}, Case{"/users/me", "/users/me"}, Case{"/users/self", "/users/self"},
        Case{"/v1/users", "/v1/users"}, Case{"/api/v2beta1/items", "/api/v2beta1/items"},
        Case{"/api/v1/users/42/orders/7", "/api/v1/users/{userId}/orders/{orderId}"},
        Case{"/orders/550e8400-e29b-41d4-a716-446655440000", "/orders/{orderId}"},
        Case{"/files/abc123def4567890.pdf", "/files/{fileId}.pdf"}, Case{"/files/report.pdf", "/files/report.pdf"},
        Case{"/reports/2024-01-31", "/reports/{reportId}"}, Case{"/events/2024-01-31T10:00:00Z", "/events/{eventId}"},
        Case{"/users/alice@example.com", "/users/{userId}"},
        Case{"/commits/9fceb02d0ae598e95dc970b74767f19372d61af8", "/commits/{commitId}"},
        Case{"/tokens/eyJhbGciOiJIUzI1NiJ9abcDEF123", "/tokens/{tokenId}"}, Case{"/123", "/{id}"}, Case{"/", "/"},
        Case{"/health", "/health"}, Case{"/categories/12", "/categories/{categoryId}"},
        Case{"/addresses/5", "/addresses/{addressId}"}, Case{"/boxes/5", "/boxes/{boxId}"},
        Case{"/status/5", "/status/{statusId}"}, Case{"/v1/5", "/v1/{id}"}, Case{"/api/5", "/api/{id}"},
        Case{"/users/42/friends/43", "/users/{userId}/friends/{friendId}"},
        Case{"/line-items/9", "/line-items/{lineItemId}"}, Case{"/user_groups/9", "/user_groups/{userGroupId}"},
        Case{"/users/42/avatar.png", "/users/{userId}/avatar.png"}, Case{"/download/1.2.3", "/download/{downloadId}"},
        Case{"/objects/507f1f77bcf86cd799439011", "/objects/{objectId}"}, Case{"/users/deadbeef", "/users/deadbeef"},
        Case{"/search/shoes", "/search/shoes"},
        Case{"/v2/users/42/posts/2024-05-01", "/v2/users/{userId}/posts/{postId}"},
        Case{"/users/42/", "/users/{userId}/"}, Case{"/a/b/c", "/a/b/c"},
        Case{"/products/sku-12345", "/products/{productId}"}, Case{"/products/abc", "/products/abc"},
        Case{"/users/usr_9f8e7d6c", "/users/{userId}"}, Case{"/pages/about-us", "/pages/about-us"},
        Case{"/images/IMG_20240101.jpg", "/images/{imageId}.jpg"},
        Case{"/api/v1.2/things/5", "/api/v1.2/things/{thingId}"}, Case{"/x/sha256", "/x/sha256"},
        Case{"/x/base64url", "/x/base64url"}, Case{"/x/oauth2callback", "/x/oauth2callback"},
        Case{"/users/42/orders", "/users/{userId}/orders"},
        Case{"/users/12345678901234567890123", "/users/{userId}"},
        Case{"/users/AbCdEfGhIjKlMnOpQrStUvWx", "/users/{userId}"},
        Case{"/users/getUserProfileSettings", "/users/getUserProfileSettings"},
        Case{"/users/42/orders/42", "/users/{userId}/orders/{orderId}"},
        Case{"/timestamps/1700000000", "/timestamps/{timestampId}"}, Case{"/mp3/files", "/mp3/files"},
        Case{"/v10/x", "/v10/x"}, Case{"/V1/x", "/V1/x"}, Case{"/users/42.json", "/users/{userId}.json"},
        Case{"/api/users/42", "/api/users/{userId}"}, Case{"/v1/api/7", "/v1/api/{id}"},
        Case{"/users/me/orders/3", "/users/me/orders/{orderId}"},
        Case{"/accounts/ACCT-0001-2024", "/accounts/{accountId}"},
        Case{"/shares/Zm9vYmFyYmF6cXV4MTIzNDU2", "/shares/{shareId}"}, Case{"/x/v2", "/x/v2"},
        Case{"/blobs/00000000000000000000000000000000", "/blobs/{blobId}"}, Case{"/classes/7", "/classes/{classId}"}));

// Security review F12: a remote client that gets answers for any Host and any
// path grew a trie per (service, role, host) and a node per segment, for good.
TEST(SecurityF12, TemplateMemoryIsBoundedAgainstRandomHostsAndDeepPaths) {
  TemplaterOptions o;
  Templater t(o);
  for (int i = 0; i < 100000; ++i) t.apply("svc\x1eserver\x1eh" + std::to_string(i) + ".test", "/a/" + std::to_string(i % 7) + "/x", true);
  EXPECT_LE(t.scope_count(), o.max_scopes);
  EXPECT_LE(t.node_count(), o.max_nodes);
  EXPECT_GE(t.scopes_forgotten(), 100000u - o.max_scopes);
  // A scope in use is kept while others come and go.
  Templater u(TemplaterOptions{.max_scopes = 8});
  for (int i = 0; i < 100; ++i) {
    u.apply("hot", "/users/42", true);
    u.apply("cold" + std::to_string(i), "/users/42", true);
  }
  EXPECT_EQ(u.apply("hot", "/users/43", false).path, "/users/{userId}");
  EXPECT_LE(u.scope_count(), 8u);
  // 8 000 segments in one path: learnt to max_depth only.
  std::string deep;
  for (int i = 0; i < 8000; ++i) deep += "/s" + std::to_string(i % 50) + "x";
  size_t before = t.node_count();
  t.apply("deep", deep, true);
  EXPECT_LE(t.node_count() - std::min(before, t.node_count()), o.max_depth + 1);
  // One scope alone cannot grow past max_nodes.
  Templater v(TemplaterOptions{.max_literal_children = 100000, .max_nodes = 5000});
  for (int i = 0; i < 20000; ++i) v.apply("one", "/w" + std::to_string(i) + "x/y", true);
  EXPECT_LE(v.node_count(), 5000u);
}

std::vector<std::string> names(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(std::string(1, static_cast<char>('a' + i % 26)) + "name" +
                                             std::string(1, static_cast<char>('a' + i / 26)));
  return out;
}

TEST(Apimap, TemplatesSiblingCardinalityCollapsesWordsButKeepsMe) {
  Templater t;
  auto people = names(40);
  EXPECT_EQ(t.apply("s", "/users/me", true).path, "/users/me");
  bool collapsed = false;
  int at = 0;
  for (const auto& n : people) {
    auto r = t.apply("s", "/users/" + n, true);
    ++at;
    if (r.collapsed) {
      collapsed = true;
      EXPECT_EQ(r.path, "/users/{userId}");
      break;
    }
    EXPECT_EQ(r.path, "/users/" + n) << "no collapse before the parent has enough visits";
  }
  ASSERT_TRUE(collapsed);
  EXPECT_GE(at, 31);  // judged once /users was visited 32 times
  EXPECT_EQ(t.apply("s", "/users/zed", true).path, "/users/{userId}");
  EXPECT_EQ(t.apply("s", "/users/me", true).path, "/users/me");
  EXPECT_EQ(t.apply("s", "/users/self", true).path, "/users/self");
  EXPECT_EQ(t.retemplate("s", "/users/" + people[0]), "/users/{userId}");
  EXPECT_EQ(t.retemplate("s", "/users/me"), "/users/me");
  // Other scopes are not affected.
  EXPECT_EQ(t.apply("other", "/users/zed", true).path, "/users/zed");
}

TEST(Apimap, TemplateMemoGivesWhatTheWalkGives) {
  // Repeats, words that collapse later, keywords, ids, hints: the memo must never
  // change a template, a collapse, or when it happens.
  Templater with, without(TemplaterOptions{.memo = false});
  for (auto* t : {&with, &without}) t->add_pattern("/hinted/{thing}", false);
  std::mt19937 rng(7);
  auto people = names(60);
  std::vector<std::string> paths = {"/users/me", "/users/self", "/api/v1/items", "/hinted/x", "/health"};
  for (int i = 0; i < 20000; ++i) {
    std::string p;
    switch (rng() % 6) {
      case 0: p = "/users/" + people[rng() % (i < 3000 ? 6 : 60)]; break;  // words, then many
      case 1: p = "/users/" + people[rng() % 6] + "/orders/" + std::to_string(rng() % 50); break;
      case 2: p = "/teams/" + people[rng() % 12] + "/members"; break;
      default: p = paths[rng() % paths.size()]; break;
    }
    std::string scope = rng() % 4 ? "svc\x1f" "server\x1f" "a" : "svc\x1f" "server\x1f" "b";
    auto a = with.apply(scope, p, true), b = without.apply(scope, p, true);
    ASSERT_EQ(a.path, b.path) << "call " << i << " " << p;
    ASSERT_EQ(a.collapsed, b.collapsed) << "call " << i << " " << p;
    ASSERT_EQ(a.params.size(), b.params.size());
    for (size_t k = 0; k < a.params.size(); ++k) {
      EXPECT_EQ(a.params[k].name, b.params[k].name);
      EXPECT_EQ(a.params[k].type, b.params[k].type);
      EXPECT_EQ(a.params[k].int_value, b.params[k].int_value);
    }
  }
  EXPECT_EQ(with.collapsed_nodes(), without.collapsed_nodes());
  EXPECT_FALSE(with.collapsed_nodes().empty());
  EXPECT_EQ(with.node_count(), without.node_count());
}

TEST(Apimap, TemplatesResourcesSeenOnceAtStartupStayLiteral) {
  // Twelve resources, each hit once as a service starts: not yet evidence of values.
  Templater t;
  for (const char* r : {"users", "orders", "items", "carts", "invoices", "reports", "files", "tags", "teams",
                        "projects", "events", "alerts"})
    EXPECT_EQ(t.apply("s", std::string("/api/v1/") + r, true).path, std::string("/api/v1/") + r);
}

TEST(Apimap, TemplatesRepeatedWordsStayLiteral) {
  // Pages that come back (most seen more than once) are vocabulary, not values.
  Templater t;
  std::vector<std::string> words = {"intro", "setup", "faq", "install", "upgrade", "limits",
                                    "pricing", "support", "terms", "privacy", "status", "blog"};
  for (size_t n = 1; n <= words.size(); ++n)
    for (size_t k = 0; k < n; ++k)
      EXPECT_EQ(t.apply("s", "/docs/" + words[k], true).path, "/docs/" + words[k]);
}

TEST(Apimap, TemplatesNotLearntFrom404s) {
  Templater t;
  for (int i = 0; i < 50; ++i) t.apply("s", "/admin/probe" + std::string(1, static_cast<char>('a' + i % 26)) + "x", false);
  EXPECT_EQ(t.node_count(), 0u);
  EXPECT_EQ(t.apply("s", "/admin/backup", true).path, "/admin/backup");
}

TEST(Apimap, TemplatesHintsAndDeclaredWin) {
  Templater t;
  t.add_pattern("/api/v1/users/{id}", false);
  t.add_pattern("/users/{user_id}", true);
  t.add_pattern("/users/me", true);
  t.add_pattern("/files/{name}.pdf", true);
  EXPECT_EQ(t.apply("s", "/api/v1/users/bob", true).path, "/api/v1/users/{id}");
  auto r = t.apply("s", "/users/42", true);
  EXPECT_EQ(r.path, "/users/{user_id}");
  ASSERT_EQ(r.params.size(), 1u);
  EXPECT_EQ(r.params[0].type, kTypeInteger);
  EXPECT_EQ(t.apply("s", "/users/me", true).path, "/users/me");
  EXPECT_EQ(t.apply("s", "/files/summary.pdf", true).path, "/files/{name}.pdf");
  EXPECT_EQ(t.apply("s", "/files/summary.txt", true).path, "/files/summary.txt");
}

TEST(Apimap, TemplateParamTypesAndNames) {
  Templater t;
  auto r = t.apply("s", "/users/42/orders/550e8400-e29b-41d4-a716-446655440000/days/2024-01-01", true);
  ASSERT_EQ(r.params.size(), 3u);
  EXPECT_EQ(r.params[0].name, "userId");
  EXPECT_EQ(r.params[0].type, kTypeInteger);
  EXPECT_EQ(r.params[0].int_value, 42);
  EXPECT_EQ(r.params[1].type, kTypeUuid);
  EXPECT_EQ(r.params[2].name, "dayId");
  EXPECT_EQ(r.params[2].type, kTypeDate);
  EXPECT_EQ(type_name(kTypeInteger | kTypeUuid), "string");
  // A param under a param: a unique name.
  EXPECT_EQ(t.apply("s", "/ids/5/6", true).path, "/ids/{idId}/{id}");
}

TEST(Apimap, SpecPathsMatchRoutes) {
  EXPECT_TRUE(same_route("/users/{userId}", "/users/{id}"));
  EXPECT_TRUE(same_route("/users/me", "/users/{id}"));
  EXPECT_FALSE(same_route("/users/{userId}", "/users/me"));
  EXPECT_TRUE(same_route("/files/{fileId}.pdf", "/files/{name}.pdf"));
  EXPECT_FALSE(same_route("/users", "/users/{id}"));
}

// --- detectors -----------------------------------------------------------------

TEST(Apimap, ChecksumsAndRules) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_TRUE(luhn_valid("4111 1111 1111 1111"));
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_TRUE(luhn_valid("378282246310005"));
  EXPECT_TRUE(iban_valid("GB82WEST12345698765432"));
  EXPECT_TRUE(iban_valid("DE89370400440532013000"));
  EXPECT_FALSE(iban_valid("GB82WEST12345698765433"));
  EXPECT_TRUE(us_ssn_valid("123-45-6789"));
  EXPECT_FALSE(us_ssn_valid("000-45-6789"));
  EXPECT_FALSE(us_ssn_valid("666-45-6789"));
  EXPECT_FALSE(us_ssn_valid("900-45-6789"));
  EXPECT_FALSE(us_ssn_valid("123-00-6789"));
  EXPECT_FALSE(us_ssn_valid("123-45-0000"));
}

uint16_t bit(int c) { return static_cast<uint16_t>(1u << c); }

void expect_classes(SensitiveScanner& s, const std::string& name) {
  struct T {
    std::string text;
    uint16_t want;
  } cases[] = {
      {R"({"email":"jane.doe@example.com"})", bit(kEmail)},
      {"mail me at x@y", 0},
      {R"({"card":"4111 1111 1111 1111"})", bit(kPaymentCard)},
      {R"({"card":"4111111111111112"})", 0},
      {"order 41111111111111110 total", 0},  // 17 digits, no valid card at a boundary
      {"iban=GB82WEST12345698765432", bit(kIban)},
      {"iban=GB82WEST12345698765433", 0},
      {"ssn 123-45-6789.", bit(kUsSsn)},
      {"ssn 666-45-6789", 0},
      {"call +14155552671 now", bit(kPhone)},
      {"call (415) 555-2671", bit(kPhone)},
      {"id 1234567", 0},
      {"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.abc", bit(kJwt)},
      {"eyJub3Rqc29u.eyJhYmNk.x", 0},
      {"AKIAIOSFODNN7EXAMPLE", bit(kAwsAccessKey)},
      {"AKIAIOSFODNN7EXAMPLEX", 0},
      {"key=AIzaSyA1234567890abcdefghijklmnopqrstuv", bit(kGcpApiKey)},
      {"ghp_abcdefghijklmnopqrstuvwxyz0123456789", bit(kGithubToken)},
      {"sk_live_4eC39HqLyjWDarjtT1zdp7dc", bit(kStripeKey)},
      {"-----BEGIN RSA PRIVATE KEY-----\nMIIE", bit(kPrivateKey)},
      {"-----BEGIN PUBLIC KEY-----", 0},
      {R"({"Password": "x"})", bit(kPasswordField)},
      {"user=a&password=b", bit(kPasswordField)},
      {"plain text without anything", 0},
  };
  for (const auto& c : cases) EXPECT_EQ(s.scan(c.text), c.want) << name << ": " << c.text;
}

TEST(Apimap, HyperscanFindsEachClassAndValidates) {
  auto s = make_hyperscan_scanner();
  ASSERT_TRUE(s) << s.error().message;
  expect_classes(**s, "hyperscan");
}

TEST(Apimap, RegexBaselineAgrees) { expect_classes(*make_regex_scanner(), "std::regex"); }

TEST(Apimap, JwtParsing) {
  // {"alg":"none"} . {"sub":"1"}
  auto none = parse_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->alg, "none");
  EXPECT_FALSE(none->exp);
  // {"alg":"HS256"} . {"iss":"me","iat":1700000000,"exp":1700003600}
  auto ok = parse_jwt("eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJtZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ.c2ln");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->alg, "HS256");
  EXPECT_EQ(ok->iss, "me");
  EXPECT_EQ(*ok->exp - *ok->iat, 3600);
  EXPECT_FALSE(parse_jwt("not.a.jwt"));
  EXPECT_FALSE(parse_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0"));      // two parts
  EXPECT_FALSE(parse_jwt("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.x"));      // no alg
  EXPECT_FALSE(parse_jwt("e$J.eyJ.x"));
  EXPECT_FALSE(parse_jwt("...."));
}

TEST(Apimap, AuthSchemes) {
  protocols::Headers h = {{"authorization", "Basic dTpw"}};
  EXPECT_EQ(detect_auth(h, "").schemes, kAuthBasic);
  h = {{"authorization", "Bearer opaque-token"}};
  EXPECT_EQ(detect_auth(h, "").schemes, kAuthBearer);
  h = {{"authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."}};
  auto a = detect_auth(h, "");
  EXPECT_EQ(a.schemes, kAuthJwt);
  EXPECT_EQ(a.jwt->alg, "none");
  h = {{"x-api-key", "k"}};
  EXPECT_EQ(detect_auth(h, "").schemes, kAuthApiKeyHeader);
  EXPECT_EQ(detect_auth({}, "a=1&api_key=zzz").schemes, kAuthApiKeyQuery);
  h = {{"cookie", "theme=dark; sessionid=abc"}};
  a = detect_auth(h, "");
  EXPECT_EQ(a.schemes, kAuthCookie);
  EXPECT_EQ(a.cookie_name, "sessionid");
  EXPECT_EQ(detect_auth({{"cookie", "theme=dark"}}, "").schemes, kAuthNone);
  EXPECT_EQ(detect_auth({}, "").schemes, kAuthNone);
}

// --- sketch, schema --------------------------------------------------------------

TEST(Apimap, SketchWithinOnePercentOnAMillionSamples) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(13.0, 1.2);  // ~0.4 ms median, long tail
  std::vector<double> v(1'000'000);
  Sketch s, a, b;
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = dist(rng);
    s.add(v[i]);
    (i % 2 ? a : b).add(v[i]);
  }
  std::sort(v.begin(), v.end());
  a.merge(b);
  for (double q : {0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999}) {
    double exact = v[static_cast<size_t>(q * (v.size() - 1))];
    EXPECT_LE(std::abs(s.quantile(q) - exact) / exact, 0.01) << q;
    EXPECT_DOUBLE_EQ(a.quantile(q), s.quantile(q)) << "merged halves differ at " << q;
  }
  EXPECT_EQ(a.count(), s.count());
  Sketch back;
  ASSERT_TRUE(Sketch::from_json(s.to_json(), back));
  EXPECT_DOUBLE_EQ(back.quantile(0.99), s.quantile(0.99));
  EXPECT_LT(s.memory_bytes(), 8192u);
}

TEST(Apimap, SchemaInference) {
  Schema s;
  ASSERT_TRUE(s.observe(R"({"id":1,"email":"a@b.io","tags":["x"],"created":"2024-01-01T10:00:00Z","n":null})"));
  ASSERT_TRUE(s.observe(R"({"id":2,"email":"c@d.io","tags":[],"created":"2024-01-02T10:00:00Z","score":1.5})"));
  EXPECT_FALSE(s.observe(R"({"id":3,"email":)"));  // cut short: not counted
  auto j = s.to_json_schema();
  EXPECT_EQ(j["type"], "object");
  EXPECT_EQ(j["properties"]["id"]["type"], "integer");
  EXPECT_EQ(j["properties"]["email"]["format"], "email");
  EXPECT_EQ(j["properties"]["created"]["format"], "date-time");
  EXPECT_EQ(j["properties"]["tags"]["items"]["type"], "string");
  std::vector<std::string> req = j["required"];
  EXPECT_EQ(req, (std::vector<std::string>{"created", "email", "id", "tags"}));
  EXPECT_EQ(j.dump().find("a@b.io"), std::string::npos) << "values must never be kept";
  Schema back;
  ASSERT_TRUE(Schema::from_state(s.to_state(), back));
  EXPECT_EQ(back.to_json_schema(), j);
}

// --- the inventory ---------------------------------------------------------------

struct Call {
  std::string method = "GET", path = "/", query, role = "server", host = "api.test";
  int status = 200;
  protocols::Headers req_headers, resp_headers;
  std::string req_body, resp_body;
  bool tls = false;
  std::string remote = "127.0.0.9";
  std::string local = "127.0.0.1";
};

class InventoryTest : public ::testing::Test {
 protected:
  void SetUp() override { make({}); }
  void make(InventoryOptions o) {
    o.node = "n1";
    auto s = make_hyperscan_scanner();
    ASSERT_TRUE(s);
    inv = std::make_unique<Inventory>(std::move(o), std::move(*s));
  }
  CallResult call(const Call& c) {
    protocols::Exchange x;
    x.request.method = c.method;
    x.request.headers = c.req_headers;
    x.request.body = c.req_body;
    x.response.status = c.status;
    x.response.headers = c.resp_headers;
    x.response.body = c.resp_body;
    CallInput in;
    in.exchange = &x;
    in.process = &proc;
    in.role = c.role;
    in.protocol = "http/1.1";
    in.method = c.method;
    in.host = c.host;
    in.path = c.path;
    in.query = c.query;
    in.status = c.status;
    in.latency_ns = 1'000'000;
    in.tls = c.tls;
    in.remote_addr = c.remote;
    in.local_addr = c.local;
    in.remote_port = 443;
    in.wall_ns = now += 1000;
    in.capture = capture;
    if (capture) in.scope = capture->for_connection(proc, ConnRef{.role = c.role});
    return inv->observe(in, emit);
  }
  nlohmann::json list() { return inv->to_json()["endpoints"]; }
  nlohmann::json findings() { return inv->to_json()["findings"]; }
  long count_kind(std::string_view kind) const {
    return std::count_if(events.begin(), events.end(), [&](const Event& e) { return e.kind() == kind; });
  }
  std::unique_ptr<Inventory> inv;
  const CapturePolicy* capture = nullptr;  // null: every call in full
  ProcessRef proc{1, 1, 1, 0, "nginx", "/usr/sbin/nginx", "/system.slice/nginx.service", "", ""};
  std::vector<Event> events;
  Inventory::Emit emit = [this](Event&& e) { events.push_back(std::move(e)); };
  uint64_t now = 1'700'000'000'000'000'000ull;
};

TEST_F(InventoryTest, EndpointsAppearAfterARealAnswerAndAreDiscoveredOnce) {
  auto r = call({.path = "/users/42"});
  EXPECT_EQ(r.endpoint, "/users/{userId}");
  EXPECT_EQ(list().size(), 0u) << "pending until the tick judges the client";
  inv->tick(now, emit);
  ASSERT_EQ(list().size(), 1u);
  auto e = list()[0];
  EXPECT_EQ(e["service"], "nginx.service");
  EXPECT_EQ(e["path"], "/users/{userId}");
  EXPECT_EQ(e["params"][0]["type"], "integer");
  call({.path = "/users/43"});
  inv->tick(now, emit);
  EXPECT_EQ(list()[0]["count"], 2);
  EXPECT_EQ(count_kind("api_discovered"), 1);
}

// events.api_call: notable asks the inventory what only it knows: an endpoint's
// first call, and a call that raised a finding for the first time.
TEST_F(InventoryTest, CallsSayWhetherTheyAreAnEndpointsFirstOrRaisedAFinding) {
  EXPECT_TRUE(call({.path = "/users/42"}).first);
  EXPECT_FALSE(call({.path = "/users/43"}).first);
  inv->tick(now, emit);  // active: findings are judged from now on
  auto basic = [&] { return call({.path = "/users/44", .req_headers = {{"authorization", "Basic dTpw"}}}); };
  auto r = basic();
  EXPECT_FALSE(r.first);
  EXPECT_TRUE(r.finding);
  EXPECT_FALSE(basic().finding) << "raised once";
  EXPECT_TRUE(call({.path = "/orders"}).first);
}

// Security review F10: a token in a path segment was kept in the inventory's
// examples (inventory.db, map export) as it was.
TEST_F(InventoryTest, SecurityF10TokensInPathsAreNotStoredInExamples) {
  const std::string token = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
  call({.path = "/reset/" + token, .query = "sig=abc&page=2"});
  inv->tick(now, emit);
  ASSERT_EQ(list().size(), 1u);
  auto e = list()[0];
  EXPECT_EQ(e["path"], "/reset/{resetId}");
  ASSERT_EQ(e["examples"].size(), 1u);
  EXPECT_EQ(e["examples"][0], "/reset/[redacted]?sig=[redacted]&page=2");
  EXPECT_EQ(inv->to_json().dump().find(token), std::string::npos);
}

// Security review F11: JSON object keys were stored by schema inference as
// they came, tokens used as keys too.
TEST(SecurityF11, TokenShapedJsonKeysAreNotStored) {
  Schema s;
  ASSERT_TRUE(s.observe(R"({"ghp_0123456789abcdefABCDEF0123456789ab": {"scope": "repo"}, "name": "x"})"));
  std::string doc = s.to_json_schema().dump();
  EXPECT_EQ(doc.find("ghp_"), std::string::npos) << doc;
  EXPECT_NE(doc.find("[redacted]"), std::string::npos) << doc;
  EXPECT_NE(doc.find("\"name\""), std::string::npos) << doc;
}

std::string b64url(std::string_view s) {
  static constexpr char kT[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string o;
  unsigned v = 0;
  int bits = 0;
  for (unsigned char c : s) {
    v = (v << 8) | c;
    for (bits += 8; bits >= 6; bits -= 6) o += kT[(v >> (bits - 6)) & 63];
  }
  if (bits) o += kT[(v << (6 - bits)) & 63];
  return o;
}

// Security review F17: "exp": 1e300 was cast to int64 (undefined), and
// exp - iat of ±9e18 overflowed. Dates outside ±2^53 are not dates.
TEST_F(InventoryTest, SecurityF17JwtDatesOutOfRangeAreIgnored) {
  auto jwt = [](std::string_view claims) { return b64url(R"({"alg":"HS256"})") + "." + b64url(claims) + ".c2ln"; };
  auto huge = parse_jwt(jwt(R"({"exp":1e300,"iat":-9000000000000000000})"));
  ASSERT_TRUE(huge);
  EXPECT_FALSE(huge->exp);
  EXPECT_FALSE(huge->iat);
  auto wide = parse_jwt(jwt(R"({"exp":9000000000000000000,"iat":-9000000000000000000})"));
  ASSERT_TRUE(wide);
  EXPECT_FALSE(wide->exp);
  EXPECT_FALSE(wide->iat);
  auto unsigned_max = parse_jwt(jwt(R"({"exp":18446744073709551615,"iat":1.5})"));
  ASSERT_TRUE(unsigned_max);
  EXPECT_FALSE(unsigned_max->exp);
  EXPECT_EQ(unsigned_max->iat, 1);
  auto fine = parse_jwt(jwt(R"({"exp":1700003600.0,"iat":1700000000})"));
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->exp, 1700003600);
  // Through the inventory: a token without a usable exp is "no expiry", no overflow.
  call({.path = "/me", .req_headers = {{"authorization", "Bearer " + jwt(R"({"exp":9e18,"iat":-9e18})")}}});
  inv->tick(now, emit);
  ASSERT_EQ(list().size(), 1u);
  EXPECT_EQ(list()[0]["auth"][0], "jwt");
}

// Security review F12, through the inventory: every Host a remote client makes
// up is a scope; memory stays bounded by the endpoint cap and the trie caps.
TEST_F(InventoryTest, SecurityF12RandomHostsDoNotGrowMemoryForGood) {
  make({.max_endpoints = 500});
  for (int i = 0; i < 20000; ++i) {
    call({.path = "/p/" + std::to_string(i), .host = "h" + std::to_string(i) + std::string(300, 'x')});
    if (i % 1000 == 999) inv->tick(now, emit);
  }
  inv->tick(now, emit);
  EXPECT_LE(list().size(), 500u);
  EXPECT_LT(inv->memory_bytes(), 8u << 20) << "bytes";
  for (const auto& e : list()) EXPECT_LE(e["host"].get<std::string>().size(), 261u);
}

TEST_F(InventoryTest, NotFoundOnlyPathsAndScannersMakeNoEndpoints) {
  for (int i = 0; i < 30; ++i) call({.path = "/wp-admin/x" + std::to_string(i) + ".php", .status = 404, .remote = "127.0.0.66"});
  call({.path = "/", .status = 200, .remote = "127.0.0.66"});  // the scanner got one real answer
  call({.path = "/gone", .status = 405});
  inv->tick(now, emit);
  EXPECT_EQ(list().size(), 0u) << list().dump();
  auto doc = inv->to_json();
  EXPECT_EQ(doc["services"][0]["unmatched_404"], 31);
  call({.path = "/", .status = 200});  // a real client
  inv->tick(now, emit);
  EXPECT_EQ(list().size(), 1u);
}

TEST_F(InventoryTest, AScannerOnThisHostIsJudgedByItsBinaryAndSourceAddress) {
  // The calling side: a real client and a scanner run the same binary, from two addresses.
  call({.path = "/users/1", .role = "client"});
  for (int i = 0; i < 20; ++i)
    call({.path = "/probe" + std::to_string(i), .role = "client", .status = 404, .local = "127.0.0.66"});
  call({.path = "/backup.zip", .role = "client", .local = "127.0.0.66"});
  call({.path = "/users/2", .role = "client"});
  inv->tick(now, emit);
  std::set<std::string> paths;
  for (const auto& e : list()) paths.insert(e["path"]);
  EXPECT_EQ(paths, (std::set<std::string>{"/users/{userId}"}));
}

TEST_F(InventoryTest, RedirectOnlyIsKeptAndFlagged) {
  call({.path = "/old", .status = 301});
  inv->tick(now, emit);
  ASSERT_EQ(list().size(), 1u);
  EXPECT_TRUE(list()[0]["redirect_only"].get<bool>());
}

TEST_F(InventoryTest, FindingsOncePerEndpointThenCounted) {
  Call c{.path = "/accounts/7", .resp_headers = {{"content-type", "application/json"}},
         .resp_body = R"({"card":"4111111111111111","email":"a@b.io"})"};
  auto r = call(c);
  EXPECT_EQ(r.sensitive, bit(kEmail) | bit(kPaymentCard));
  inv->tick(now, emit);
  call(c);
  auto fs = inv->to_json()["findings"];
  ASSERT_EQ(fs.size(), 1u) << fs.dump();
  EXPECT_EQ(fs[0]["id"], "unauthenticated-sensitive-data");
  EXPECT_EQ(fs[0]["owasp"], "API3");
  EXPECT_EQ(fs[0]["count"], 2);
  EXPECT_EQ(fs[0]["evidence"].get<std::string>().find("4111"), std::string::npos);
  EXPECT_EQ(count_kind("finding"), 1);
  auto e = list()[0];
  EXPECT_GE(e["risk"]["score"], 6);
  EXPECT_FALSE(e["risk"]["reasons"].empty());
}

TEST_F(InventoryTest, AuthFindings) {
  call({.path = "/a", .req_headers = {{"authorization", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."}}});
  call({.path = "/b", .req_headers = {{"authorization", "Basic dTpw"}}, .tls = true});
  call({.path = "/c", .query = "api_key=secret123"});
  inv->tick(now, emit);
  std::set<std::string> ids;
  for (const auto& f : findings()) ids.insert(f["id"]);
  EXPECT_TRUE(ids.count("jwt-alg-none"));
  EXPECT_TRUE(ids.count("jwt-no-exp"));
  EXPECT_TRUE(ids.count("credentials-over-plaintext"));
  EXPECT_TRUE(ids.count("basic-auth"));
  EXPECT_TRUE(ids.count("secret-in-url"));
  for (const auto& e : list()) EXPECT_EQ(e.dump().find("secret123"), std::string::npos);
}

TEST_F(InventoryTest, SequentialIdsOnAnUnauthenticatedEndpoint) {
  for (int i = 1; i <= 6; ++i) call({.path = "/invoices/" + std::to_string(i)});
  inv->tick(now, emit);
  for (int i = 7; i <= 8; ++i) call({.path = "/invoices/" + std::to_string(i)});
  bool found = false;
  for (const auto& f : findings()) found = found || f["id"] == "sequential-ids";
  EXPECT_TRUE(found);
}

TEST_F(InventoryTest, ShadowAndZombieAgainstDeclaredSpec) {
  auto ops = parse_spec(R"(openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /users/{id}:
    get: {responses: {"200": {description: ok}}}
  /legacy:
    get: {deprecated: true, responses: {"200": {description: ok}}}
)",
                        "spec.yaml");
  ASSERT_TRUE(ops) << ops.error().message;
  make({.declared = *ops});
  call({.path = "/users/5"});
  call({.path = "/legacy"});
  call({.path = "/internal/debug"});
  inv->tick(now, emit);
  std::map<std::string, std::string> by_path;
  for (const auto& f : findings()) by_path[f["endpoint"]["path"]] = f["id"];
  EXPECT_EQ(by_path["/users/{id}"], "");
  EXPECT_EQ(by_path["/legacy"], "zombie-api");
  EXPECT_EQ(by_path["/internal/debug"], "shadow-api");
  auto diff = diff_against_spec(inv->to_json(), *ops);
  EXPECT_EQ(diff["shadow"].size(), 1u);
  EXPECT_EQ(diff["zombie"].size(), 1u);
  EXPECT_EQ(diff["orphan"].size(), 0u);
}

TEST_F(InventoryTest, CollapseMergesEarlierEndpoints) {
  for (const auto& n : names(40)) call({.path = "/people/" + n});
  call({.path = "/people/me"});
  inv->tick(now, emit);
  std::set<std::string> paths;
  for (const auto& e : list()) paths.insert(e["path"]);
  EXPECT_EQ(paths, (std::set<std::string>{"/people/{personId}", "/people/me"})) << list().dump();
}

TEST_F(InventoryTest, BoundedWithEvictionCounted) {
  make({.max_endpoints = 100});
  for (int i = 0; i < 300; ++i) {
    call({.path = "/r" + std::to_string(i)});
    if (i % 10 == 9) inv->tick(now, emit);
  }
  inv->tick(now, emit);
  EXPECT_LE(inv->endpoints() + inv->pending(), 100u);
  EXPECT_GT(inv->evicted(), 0u);
}

// Capture levels (issue 28, item 2): each level feeds the inventory what it
// promises and nothing it did not look at ("no auth" is not claimed unseen).
TEST_F(InventoryTest, CaptureLevelsFeedWhatTheyPromise) {
  const CapturePolicy metadata({.level = CaptureLevel::kMetadata});
  const CapturePolicy headers({.level = CaptureLevel::kHeaders, .full_first = 0, .full_sample_every = 0});
  auto send = [&](const std::string& path) {
    return call({.method = "POST", .path = path,
                 .req_headers = {{"content-type", "application/json"}, {"authorization", "Basic dTpw"},
                                 {"x-card", "4111 1111 1111 1111"}},
                 .resp_headers = {{"content-type", "application/json"}},
                 .req_body = R"({"name":"x"})", .resp_body = R"({"email":"ann@example.com"})"});
  };
  capture = &metadata;
  CallResult m = send("/m");
  capture = &headers;
  CallResult h = send("/h");
  capture = nullptr;
  CallResult f = send("/f");
  EXPECT_EQ(m.level, CaptureLevel::kMetadata);
  EXPECT_EQ(h.level, CaptureLevel::kHeaders);
  EXPECT_EQ(f.level, CaptureLevel::kFull);
  EXPECT_EQ(m.sensitive, 0) << "neither headers nor bodies were looked at";
  EXPECT_EQ(h.sensitive, 1u << kPaymentCard) << "the header, not the body";
  EXPECT_EQ(f.sensitive, (1u << kPaymentCard) | (1u << kEmail));
  inv->tick(now, emit);
  std::map<std::string, nlohmann::json> by_path;
  for (const auto& e : list()) by_path[e["path"]] = e;
  ASSERT_EQ(by_path.size(), 3u);
  EXPECT_EQ(by_path["/m"]["auth"], nlohmann::json::array());
  EXPECT_EQ(by_path["/m"]["request"]["content_types"], nlohmann::json::array());
  EXPECT_EQ(by_path["/h"]["auth"], nlohmann::json({"basic"}));
  EXPECT_EQ(by_path["/h"]["request"]["content_types"], nlohmann::json({"application/json"}));
  EXPECT_EQ(by_path["/h"]["response"]["schema"]["n"], 0) << "no body was looked at";
  EXPECT_EQ(by_path["/f"]["auth"], nlohmann::json({"basic"}));
  EXPECT_EQ(by_path["/f"]["response"]["schema"]["n"], 1);
  EXPECT_EQ(by_path["/f"]["sensitive"], nlohmann::json({"email", "payment_card"}));
}

// At headers, each endpoint's first calls and 1 in N after them are looked at
// in full: body-only classes are still found on the samples.
TEST_F(InventoryTest, HeadersLevelLooksAtEachEndpointsFirstCallsAndSamplesInFull) {
  const CapturePolicy p({.level = CaptureLevel::kHeaders, .full_first = 2, .full_sample_every = 3});
  capture = &p;
  std::string levels;
  for (int i = 0; i < 9; ++i) {
    CallResult r = call({.path = "/a", .resp_headers = {{"content-type", "application/json"}},
                         .resp_body = R"({"email":"ann@example.com"})"});
    levels += r.level == CaptureLevel::kFull ? 'F' : 'H';
    EXPECT_EQ(r.sensitive != 0, r.level == CaptureLevel::kFull) << i;
  }
  EXPECT_EQ(levels, "FFFHHFHHF");
  EXPECT_EQ(call({.path = "/b"}).level, CaptureLevel::kFull) << "another endpoint starts its own count";
}

TEST_F(InventoryTest, BodySchemasAndOpenApi) {
  call({.method = "POST", .path = "/users", .status = 201,
        .req_headers = {{"content-type", "application/json"}, {"authorization", "Bearer opaque"}},
        .resp_headers = {{"content-type", "application/json"}}, .req_body = R"({"email":"x@y.io","name":"x"})",
        .resp_body = R"({"id":"550e8400-e29b-41d4-a716-446655440000"})", .tls = true});
  call({.path = "/users/7", .tls = true});
  inv->tick(now, emit);
  auto api = to_openapi(inv->to_json(), {});
  EXPECT_EQ(api["openapi"], "3.1.0");
  auto post = api["paths"]["/users"]["post"];
  EXPECT_EQ(post["requestBody"]["content"]["application/json"]["schema"]["properties"]["email"]["format"], "email");
  EXPECT_EQ(post["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["id"]["format"], "uuid");
  EXPECT_EQ(post["security"][0].begin().key(), "bearerAuth");
  EXPECT_EQ(api["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
  auto get = api["paths"]["/users/{userId}"]["get"];
  EXPECT_EQ(get["parameters"][0]["schema"]["type"], "integer");
  EXPECT_EQ(get["x-vigil-count"], 1);
  EXPECT_EQ(api["servers"][0]["url"], "https://api.test");
}

TEST_F(InventoryTest, MergeAddsCountsAndSketches) {
  call({.path = "/users/1"});
  inv->tick(now, emit);
  auto a = inv->to_json();
  auto merged = merge_inventories({a, a});
  ASSERT_TRUE(merged) << merged.error().message;
  ASSERT_EQ((*merged)["endpoints"].size(), 1u);
  EXPECT_EQ((*merged)["endpoints"][0]["count"], 2);
  EXPECT_EQ((*merged)["endpoints"][0]["latency_sketch"]["bins"][0].get<uint64_t>() +
                (*merged)["endpoints"][0]["latency_sketch"]["zero"].get<uint64_t>(),
            2u);
  EXPECT_FALSE(merge_inventories({nlohmann::json{{"x", 1}}}));
}

TEST_F(InventoryTest, StoreRoundTripKeepsDiscoveryAndFindings) {
  char dir[] = "/tmp/vigil-store-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  std::string db = std::string(dir) + "/inventory.db";
  call({.path = "/users/1", .query = "token=abc"});
  for (const auto& n : names(40)) call({.path = "/tags/" + n});
  inv->tick(now, emit);
  {
    auto s = Store::open(db);
    ASSERT_TRUE(s) << s.error().message;
    auto n = (*s)->save(inv->take_changes());
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_GT(*n, 0u);
  }
  auto before = inv->to_json();
  make({});
  events.clear();
  auto s = Store::open(db);
  ASSERT_TRUE(s);
  auto loaded = (*s)->load();
  ASSERT_TRUE(loaded) << loaded.error().message;
  inv->restore(loaded->endpoints, loaded->findings, loaded->services, loaded->collapsed);
  EXPECT_EQ(inv->to_json()["endpoints"], before["endpoints"]);
  call({.path = "/users/2", .query = "token=abc"});
  call({.path = "/tags/zz"});
  inv->tick(now, emit);
  EXPECT_EQ(count_kind("api_discovered"), 0);
  EXPECT_EQ(count_kind("finding"), 0);
  // A newer schema is refused by name.
  (*s).reset();
  ASSERT_EQ(system(("sqlite3 " + db + " 'PRAGMA user_version=99' 2>/dev/null || python3 -c \"import sqlite3;"
                    "c=sqlite3.connect('" + db + "');c.execute('PRAGMA user_version=99');c.commit()\"")
                       .c_str()),
            0);
  auto newer = Store::open(db);
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().message.find("newer"), std::string::npos);
  (void)system(("rm -rf " + std::string(dir)).c_str());
}

TEST(Apimap, ServiceNames) {
  EXPECT_EQ(service_name({1, 1, 1, 0, "nginx", "/usr/sbin/nginx", "/system.slice/nginx.service", "", ""}),
            "nginx.service");
  EXPECT_EQ(service_name({1, 1, 1, 0, "python3", "/usr/bin/python3.11", "/user.slice/session-1.scope", "", ""}),
            "python3.11");
  EXPECT_EQ(service_name({1, 1, 1, 0, "app", "/app", "/kubepods/pod1/abc", "0123456789abcdef", "pod1"}),
            "container:0123456789ab");
}

}  // namespace
}  // namespace vigil::apimap
