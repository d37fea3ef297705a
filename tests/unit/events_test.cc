#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent/events/events.h"

namespace vigil {
namespace {

using nlohmann::json;

Event envelope(EventBody body) {
  Event e;
  e.time_ns = 1795336200123456789ull;  // 2026-11-22T08:30:00.123456789Z
  e.node = "host-1";
  e.seq = 42;
  ProcessRef p;
  p.pid = 1234;
  p.tid = 1235;
  p.ppid = 1;
  p.uid = 1001;
  p.comm = "curl";
  p.exe = "/usr/bin/curl";
  p.cgroup = "/system.slice/x.service";
  e.process = std::make_shared<const ProcessRef>(p);
  e.body = std::move(body);
  return e;
}

// Events share their process: a test that changes it gets its own copy.
ProcessRef& edit_process(Event& e) {
  auto p = std::make_shared<ProcessRef>(*e.process);
  e.process = p;
  return *p;
}

ConnRef conn() {
  return ConnRef{7, "tcp", "ipv4", "client", {"127.0.0.1", 40000}, {"127.0.0.2", 443}};
}

constexpr const char* kEnvelope =
    R"({"v":1,"time":"2026-11-22T08:30:00.123456789Z","node":"host-1","kind":"%s","seq":42,)"
    R"("process":{"pid":1234,"tid":1235,"ppid":1,"uid":1001,"comm":"curl","exe":"/usr/bin/curl",)"
    R"("cgroup":"/system.slice/x.service"},)";
constexpr const char* kConn =
    R"("conn":{"id":7,"proto":"tcp","family":"ipv4","role":"client","local":{"addr":"127.0.0.1",)"
    R"("port":40000},"remote":{"addr":"127.0.0.2","port":443}})";

std::string expected(const char* kind, const std::string& rest) {
  std::string env = kEnvelope;
  env.replace(env.find("%s"), 2, kind);
  return env + rest + "}";
}

TEST(Events, Rfc3339Nanoseconds) {
  EXPECT_EQ(format_rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(format_rfc3339_ns(1795336200123456789ull), "2026-11-22T08:30:00.123456789Z");
  EXPECT_EQ(format_rfc3339_ns(1795336200000000001ull), "2026-11-22T08:30:00.000000001Z");
}

TEST(Events, ConnectionOpen) {
  EXPECT_EQ(to_json(envelope(ConnectionEvent{conn(), "open", {}, {}})),
            expected("connection", std::string(kConn) + R"(,"state":"open")"));
}

TEST(Events, ConnectionCloseCarriesByteCounts) {
  EXPECT_EQ(to_json(envelope(ConnectionEvent{conn(), "close", 79, 1102})),
            expected("connection",
                     std::string(kConn) + R"(,"state":"close","bytes_sent":79,"bytes_recv":1102)"));
}

TEST(Events, ContainerAndPodOnlyWhenKnown) {
  Event e = envelope(ConnectionEvent{conn(), "open", {}, {}});
  edit_process(e).container_id = "abc";
  edit_process(e).pod_uid = "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8";
  json j = json::parse(to_json(e));
  EXPECT_EQ(j["process"]["container_id"], "abc");
  EXPECT_EQ(j["process"]["pod_uid"], "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8");
}

TEST(Events, TheConnectionsCachedFragmentEncodesLikeItsFields) {
  Event e = envelope(ConnectionEvent{conn(), "open", {}, {}});
  std::string plain = to_json(e);
  encode_conn_ref(std::get<ConnectionEvent>(e.body).conn);
  ASSERT_TRUE(std::get<ConnectionEvent>(e.body).conn.json);
  EXPECT_EQ(to_json(e), plain);
}

TEST(Events, PodMetadataWhenTheClusterNamesIt) {
  Event e = envelope(ConnectionEvent{conn(), "open", {}, {}});
  edit_process(e).pod_uid = "7f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8";
  json j = json::parse(to_json(e));
  EXPECT_FALSE(j["process"].contains("namespace"));
  EXPECT_FALSE(j["process"].contains("workload"));
  edit_process(e).k8s_namespace = "shop";
  edit_process(e).pod = "api-7c9d8b6f5-q4w8z";
  edit_process(e).container = "api";
  edit_process(e).workload_kind = "Deployment";
  edit_process(e).workload = "api";
  edit_process(e).labels = {{"app", "api"}, {"tier", "backend"}};
  j = json::parse(to_json(e));
  EXPECT_EQ(j["process"]["namespace"], "shop");
  EXPECT_EQ(j["process"]["pod"], "api-7c9d8b6f5-q4w8z");
  EXPECT_EQ(j["process"]["container"], "api");
  EXPECT_EQ(j["process"]["workload"], (json{{"kind", "Deployment"}, {"name", "api"}}));
  EXPECT_EQ(j["process"]["labels"], (json{{"app", "api"}, {"tier", "backend"}}));
}

TEST(Events, ApiCall) {
  ApiCallEvent a;
  a.conn = conn();
  a.role = "client";
  a.tls = true;
  a.tls_lib = "openssl-3";
  a.protocol = "grpc";
  a.request = {"POST", "api.test", "/pkg.Svc/Get", std::string("x=1"), {{"authorization", "[redacted]"}}};
  a.response = {200, {{"content-type", "application/grpc"}}};
  a.endpoint = "/pkg.Svc/Get";
  a.latency_ns = 1500;
  a.req_bytes = 10;
  a.resp_bytes = 20;
  a.sensitive = {"email"};
  a.grpc = ApiCallEvent::Grpc{"pkg.Svc", "Get", 0};
  EXPECT_EQ(to_json(envelope(a)),
            expected("api_call",
                     std::string(kConn) +
                         R"(,"role":"client","tls":true,"tls_lib":"openssl-3","protocol":"grpc",)"
                         R"("request":{"method":"POST","host":"api.test","path":"/pkg.Svc/Get",)"
                         R"("query":"x=1","headers":{"authorization":"[redacted]"}},)"
                         R"("response":{"status":200,"headers":{"content-type":"application/grpc"}},)"
                         R"("endpoint":"/pkg.Svc/Get","latency_ns":1500,"req_bytes":10,"resp_bytes":20,)"
                         R"("truncated":false,"sensitive":["email"],)"
                         R"("grpc":{"service":"pkg.Svc","method":"Get","status":0})"));
}

TEST(Events, Egress) {
  EgressEvent g{"would_deny", "audit", "payments-egress", "egress[0]", "tcp",
                {"127.0.0.3", 443, std::string("api.test")}};
  EXPECT_EQ(to_json(envelope(g)),
            expected("egress", R"("verdict":"would_deny","mode":"audit","policy":"payments-egress",)"
                               R"("rule":"egress[0]","proto":"tcp",)"
                               R"("dst":{"addr":"127.0.0.3","port":443,"fqdn":"api.test"})"));
}

TEST(Events, ApiDiscovered) {
  ApiDiscoveredEvent d;
  d.service = "nginx";
  d.role = "server";
  d.endpoint = {"GET", "api.test", "/users/{userId}", "http/1.1"};
  d.first_seen_ns = 1795336200123456789ull;
  EXPECT_EQ(to_json(envelope(d)),
            expected("api_discovered",
                     R"("service":"nginx","role":"server","endpoint":{"method":"GET","host":"api.test",)"
                     R"("path":"/users/{userId}","protocol":"http/1.1"},"first_seen":"2026-11-22T08:30:00.123456789Z")"));
}

TEST(Events, Finding) {
  FindingEvent f{"secret-in-url", "medium", "Credentials in query", std::string("API8"), {},
                 EndpointRef{"GET", "api.test", "/login", "http/1.1"}, "query parameter token"};
  EXPECT_EQ(to_json(envelope(f)),
            expected("finding", R"("finding":{"id":"secret-in-url","severity":"medium",)"
                                R"("title":"Credentials in query","owasp":"API8",)"
                                R"("endpoint":{"method":"GET","host":"api.test","path":"/login"},)"
                                R"("evidence":"query parameter token"})"));
}

TEST(Events, Policy) {
  EXPECT_EQ(to_json(envelope(PolicyEvent{"p", "rejected", std::string("p.yaml:3:5: bad cidr")})),
            expected("policy", R"("policy":{"name":"p","action":"rejected","error":"p.yaml:3:5: bad cidr"})"));
}

TEST(Events, LostHasNoProcess) {
  Event e = envelope(LostEvent{"kernel_ringbuf", 12});
  e.process.reset();
  EXPECT_EQ(to_json(e), R"({"v":1,"time":"2026-11-22T08:30:00.123456789Z","node":"host-1",)"
                        R"("kind":"lost","seq":42,"lost":{"source":"kernel_ringbuf","count":12}})");
}

TEST(Events, InvalidUtf8IsReplacedNotFatal) {
  Event e = envelope(ConnectionEvent{conn(), "open", {}, {}});
  edit_process(e).comm = std::string("a\xff\xfe", 3);
  json j = json::parse(to_json(e));
  EXPECT_EQ(j["process"]["comm"].get<std::string>().substr(0, 1), "a");
}

TEST(Events, KindNamesMatchTheSchema) {
  EXPECT_STREQ(envelope(ConnectionEvent{}).kind(), "connection");
  EXPECT_STREQ(envelope(ApiCallEvent{}).kind(), "api_call");
  EXPECT_STREQ(envelope(EgressEvent{}).kind(), "egress");
  EXPECT_STREQ(envelope(ApiDiscoveredEvent{}).kind(), "api_discovered");
  EXPECT_STREQ(envelope(FindingEvent{}).kind(), "finding");
  EXPECT_STREQ(envelope(PolicyEvent{}).kind(), "policy");
  EXPECT_STREQ(envelope(LostEvent{}).kind(), "lost");
}

}  // namespace
}  // namespace vigil
