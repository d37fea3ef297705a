#include <gtest/gtest.h>

#include "agent/events/api_call.h"

namespace vigil {
namespace {

TEST(Redaction, SecretHeaders) {
  EXPECT_TRUE(secrets::is_secret_header("authorization"));
  EXPECT_TRUE(secrets::is_secret_header("cookie"));
  EXPECT_TRUE(secrets::is_secret_header("set-cookie"));
  EXPECT_TRUE(secrets::is_secret_header("proxy-authorization"));
  EXPECT_FALSE(secrets::is_secret_header("content-type"));
}

TEST(Redaction, TokenLikeQueryValues) {
  EXPECT_EQ(redact_query("token=abc&x=1"), "token=[redacted]&x=1");
  EXPECT_EQ(redact_query("a=1&access_token=zz&API_KEY=k&sig=s&code=c&page=2"),
            "a=1&access_token=[redacted]&API_KEY=[redacted]&sig=[redacted]&code=[redacted]&page=2");
  EXPECT_EQ(redact_query("q=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"), "q=[redacted]");
  EXPECT_EQ(redact_query("flag&x="), "flag&x=");
  EXPECT_EQ(redact_query(""), "");
}

TEST(Redaction, JsonBodies) {
  EXPECT_EQ(redact_body(R"({"user":"ann","password":"hunter2","n":1})", "application/json"),
            R"({"user":"ann","password":"[redacted]","n":1})");
  EXPECT_EQ(redact_body(R"({"access_token" : "a\"b", "x":"y"})", ""),
            R"({"access_token" : "[redacted]", "x":"y"})");
  EXPECT_EQ(redact_body(R"({"nested":{"apiKey":"k"},"list":["token"]})", "application/json"),
            R"({"nested":{"apiKey":"[redacted]"},"list":["token"]})");
  EXPECT_EQ(redact_body(R"({"secret":"cut off mid-valu)", "application/json"),
            R"({"secret":"[redacted]")");
  EXPECT_EQ(redact_body(R"({"count":5})", "application/json"), R"({"count":5})");
  // Not JSON or a form: a secret could be anywhere, so nothing of it ships.
  EXPECT_EQ(redact_body("not json at all", "text/plain"), "[redacted]");
}

TEST(Redaction, FormBodies) {
  EXPECT_EQ(redact_body("user=ann&password=hunter2", "application/x-www-form-urlencoded; charset=utf-8"),
            "user=ann&password=[redacted]");
}

protocols::Exchange exchange(std::string target) {
  protocols::Exchange x;
  x.request.method = "POST";
  x.request.target = std::move(target);
  x.request.headers = {{"host", "api.test"}, {"authorization", "Bearer s3cr3t"}};
  x.request.head_bytes = 50;
  x.request.body_bytes = 10;
  x.request.first_ts = 1000;
  x.response.status = 201;
  x.response.headers = {{"set-cookie", "sid=1"}, {"content-type", "application/json"}};
  x.response.head_bytes = 40;
  x.response.body_bytes = 5;
  x.response.first_ts = 4000;
  x.response.truncated = true;
  return x;
}

TEST(ApiCall, FromExchange) {
  ConnRef conn{1, "tcp", "ipv4", "client", {"127.0.0.1", 5}, {"127.0.0.2", 80}};
  ApiCallEvent a = make_api_call(exchange("/users/7?token=t&v=2"), conn, {});
  EXPECT_EQ(a.role, "client");
  EXPECT_EQ(a.protocol, "http/1.1");
  EXPECT_EQ(a.request.method, "POST");
  EXPECT_EQ(a.request.host, "api.test");
  EXPECT_EQ(a.request.path, "/users/7");
  EXPECT_EQ(a.request.query, "token=[redacted]&v=2");
  EXPECT_EQ(a.endpoint, "/users/7") << "raw until the inventory templates it";
  EXPECT_EQ(a.response.status, 201);
  EXPECT_EQ(a.latency_ns, 3000u);
  EXPECT_EQ(a.req_bytes, 60u);
  EXPECT_EQ(a.resp_bytes, 45u);
  EXPECT_TRUE(a.truncated);
  EXPECT_EQ(a.request.headers[1].second, "[redacted]");
  EXPECT_EQ(a.response.headers[0].second, "[redacted]");
  EXPECT_EQ(a.response.headers[1].second, "application/json");
  EXPECT_FALSE(a.request_body.has_value());
}

TEST(ApiCall, AbsoluteFormTargetThroughAProxy) {
  ApiCallEvent a = make_api_call(exchange("http://other.test:8080/p/1?x"), ConnRef{}, {});
  EXPECT_EQ(a.request.host, "api.test") << "Host header wins";
  EXPECT_EQ(a.request.path, "/p/1");
  EXPECT_EQ(a.request.query, "x");
  auto x = exchange("http://other.test:8080");
  x.request.headers.clear();
  a = make_api_call(x, ConnRef{}, {});
  EXPECT_EQ(a.request.host, "other.test:8080");
  EXPECT_EQ(a.request.path, "/");
  EXPECT_FALSE(a.request.query.has_value());
}

// Issue 14: the authority ends at '?' too, and a fragment is part of neither the
// path nor the query.
TEST(ApiCall, AbsoluteFormWithAQueryButNoPathAndFragments) {
  auto x = exchange("http://host:1234?x=1");
  x.request.headers.clear();
  ApiCallEvent a = make_api_call(x, ConnRef{}, {});
  EXPECT_EQ(a.request.host, "host:1234");
  EXPECT_EQ(a.request.path, "/");
  EXPECT_EQ(a.request.query, "x=1");
  a = make_api_call(exchange("/posts?page=1#posts"), ConnRef{}, {});
  EXPECT_EQ(a.request.path, "/posts");
  EXPECT_EQ(a.request.query, "page=1");
  a = make_api_call(exchange("/doc#top"), ConnRef{}, {});
  EXPECT_EQ(a.request.path, "/doc");
  EXPECT_FALSE(a.request.query.has_value());
}

TEST(ApiCall, RepeatedHeadersBecomeOneKey) {
  auto x = exchange("/");
  x.response.headers = {{"vary", "a"}, {"set-cookie", "x=1"}, {"vary", "b"}, {"set-cookie", "y=2"}};
  ApiCallEvent a = make_api_call(x, ConnRef{}, {});
  ASSERT_EQ(a.response.headers.size(), 2u);
  EXPECT_EQ(a.response.headers[0].second, "a, b");
  EXPECT_EQ(a.response.headers[1].second, "[redacted]");
}

TEST(ApiCall, BodiesOnlyWhenConfigured) {
  auto x = exchange("/");
  x.request.body = "{\"a\":1,\"token\":\"t\"}";
  ApiCallEvent a = make_api_call(x, ConnRef{}, ApiCallOptions{.bodies = true});
  EXPECT_EQ(a.request_body, "{\"a\":1,\"token\":\"[redacted]\"}");
}

// Security review F10: credential headers the inventory itself recognises,
// JWTs under any header name, tokens in path segments and userinfo in an
// absolute-form authority shipped as they were.
TEST(SecurityF10, CredentialsInHeadersPathsAndAuthorityAreRedacted) {
  for (const char* h : {"api-key", "apikey", "x-apikey", "x-access-token", "x-api-token", "x-csrf-token",
                        "x-vault-token", "private-token", "x-goog-api-key", "ocp-apim-subscription-key",
                        "authentication", "x-session-id", "x-client-secret"})
    EXPECT_TRUE(secrets::is_secret_header(h)) << h;
  // Every header the inventory counts as an API key is redacted (one list).
  for (const char* h : {"x-api-key", "api-key", "x-auth-token", "x-access-token"})
    EXPECT_TRUE(secrets::is_api_key_header(h) && secrets::is_secret_header(h)) << h;
  for (const char* h : {"content-type", "user-agent", "accept-encoding", "x-request-id", "keep-alive", "host"})
    EXPECT_FALSE(secrets::is_secret_header(h)) << h;

  protocols::Exchange x;
  x.request.method = "GET";
  x.request.target = "http://bob:hunter2@api.test:8080/reset/4f1b2c3d4e5f60718293a4b5c6d7e8f901234567?x=1";
  x.request.headers = {{"x-access-token", "abc"},
                       {"x-foo", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJl"},
                       {"accept", "*/*"}};
  x.response.status = 200;
  ApiCallEvent a = make_api_call(x, ConnRef{}, {});
  EXPECT_EQ(a.request.host, "api.test:8080");
  EXPECT_EQ(a.request.path, "/reset/[redacted]");
  EXPECT_EQ(a.request.headers[0].second, "[redacted]");
  EXPECT_EQ(a.request.headers[1].second, "[redacted]");
  EXPECT_EQ(a.request.headers[2].second, "*/*");
  // Token shapes in paths; ids and words stay.
  EXPECT_EQ(secrets::redact_path("/bot123456789:AAEhBOweik6ad6PsWZRcXUgPaGFhqOvWjw/sendMessage"),
            "/[redacted]/sendMessage");
  EXPECT_EQ(secrets::redact_path("/hooks/ghp_0123456789abcdefABCDEF0123456789ab/x"), "/hooks/[redacted]/x");
  EXPECT_EQ(secrets::redact_path("/users/42/orders/3f2a9c1e-1111-4222-8333-444455556666"),
            "/users/42/orders/3f2a9c1e-1111-4222-8333-444455556666");
  EXPECT_EQ(secrets::redact_path("/api/v1/line-items/usr_12345"), "/api/v1/line-items/usr_12345");
  // Random (v4) UUIDs are ids the templater types, however random they look.
  EXPECT_EQ(secrets::redact_path("/orders/f47ac10b-58cc-4372-a567-0e02b2c3d479"),
            "/orders/f47ac10b-58cc-4372-a567-0e02b2c3d479");
  EXPECT_FALSE(secrets::looks_like_token("6ba7b810-9dad-11d1-80b4-00c04fd430c8"));
  // A digest named as a file keeps its extension for the template ("{fileId}.pdf").
  EXPECT_EQ(secrets::redact_path("/api/v1/files/9fceb02d0ae598e95dc970b74767f19372d61af8.pdf"),
            "/api/v1/files/[redacted].pdf");
}

// Security review F11: query names and JSON values the list missed.
TEST(SecurityF11, MoreSecretNamesAndNonStringJsonValues) {
  EXPECT_EQ(redact_query("pass=p&api-key=k&access_key=a&credentials=c&private_key=pk&page=2"),
            "pass=[redacted]&api-key=[redacted]&access_key=[redacted]&credentials=[redacted]&private_key=[redacted]&page=2");
  EXPECT_EQ(redact_body(R"({"pin": 1234, "tokens": ["t1", {"a": "b"}], "password": null, "id": 7})", "application/json"),
            R"({"pin": "[redacted]", "tokens": "[redacted]", "password": "[redacted]", "id": 7})");
  EXPECT_EQ(redact_body(R"({"auth": {"user": "u", "pass": "p"}, "n": 1})", "application/json"),
            R"({"auth": "[redacted]", "n": 1})");
  EXPECT_EQ(redact_body("<login><password>p</password></login>", "application/xml"), "[redacted]");
  EXPECT_EQ(redact_body("--b\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\np\r\n--b--",
                        "multipart/form-data; boundary=b"),
            "[redacted]");
  EXPECT_EQ(redact_body(R"({"pin": 12)", "application/json"), R"({"pin": "[redacted]")");  // cut inside
}

}  // namespace
}  // namespace vigil
