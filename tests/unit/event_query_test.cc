// The filters of `vigil trace` and `vigil events` on event JSON, and the tables of `vigil top`.
#include <gtest/gtest.h>

#include <algorithm>

#include "agent/cli/event_query.h"
#include "agent/cli/output.h"
#include "agent/cli/top_table.h"

namespace vigil::cli {
namespace {

nlohmann::json ev(const char* text) { return nlohmann::json::parse(text); }

TEST(EventQuery, FiltersByProcessHostPathVerdictSeverityAndTime) {
  auto call = ev(R"({"time":"2026-12-01T10:00:00.500Z","kind":"api_call","process":{"pid":7,"comm":"curl"},
                     "request":{"method":"GET","host":"api.example","path":"/v1/users/3"}})");
  auto deny = ev(R"({"time":"2026-12-01T11:00:00Z","kind":"egress","verdict":"deny","process":{"pid":9,"comm":"nc"},
                     "dst":{"addr":"203.0.113.9","port":443,"fqdn":"evil.example"}})");
  auto finding = ev(R"({"time":"2026-12-01T12:00:00Z","kind":"finding","finding":{"severity":"critical",
                        "endpoint":{"method":"GET","host":"api.example","path":"/admin"}}})");
  EventQuery q;
  EXPECT_TRUE(q.matches(call) && q.matches(deny) && q.matches(finding));
  q.pid = 7;
  EXPECT_TRUE(q.matches(call));
  EXPECT_FALSE(q.matches(deny));
  EXPECT_FALSE(q.matches(finding));  // no process
  q = {};
  q.host = "api.example";
  EXPECT_TRUE(q.matches(call) && q.matches(finding));
  EXPECT_FALSE(q.matches(deny));
  q.host = "evil.example";
  EXPECT_TRUE(q.matches(deny));
  q = {};
  q.path = "/v1/";
  EXPECT_TRUE(q.matches(call));
  EXPECT_FALSE(q.matches(finding));
  q = {};
  q.verdict = "deny";
  EXPECT_TRUE(q.matches(deny));
  EXPECT_FALSE(q.matches(call));
  q = {};
  q.severity = "high";
  EXPECT_FALSE(q.matches(call));
  EXPECT_TRUE(q.matches(deny) && q.matches(finding));
  q.severity = "critical";
  EXPECT_FALSE(q.matches(deny));
  q = {};
  q.since = "2026-12-01T10:30:00Z";
  q.until = "2026-12-01T11:30:00Z";
  ASSERT_TRUE(q.resolve(0));
  EXPECT_FALSE(q.matches(call));
  EXPECT_TRUE(q.matches(deny));
  EXPECT_FALSE(q.matches(finding));
  q = {};
  q.kinds = {"finding"};
  EXPECT_TRUE(q.matches(finding));
  EXPECT_FALSE(q.matches(call));
}

TEST(EventQuery, TimesAreRfc3339OrADurationAgo) {
  EXPECT_EQ(parse_rfc3339_ns("1970-01-01T00:00:01.25Z"), 1'250'000'000ull);
  EXPECT_EQ(parse_rfc3339_ns("1970-01-01T00:00:02.123456789Z"), 2'123'456'789ull);
  EXPECT_EQ(parse_rfc3339_ns("yesterday"), 0u);
  EventQuery q;
  q.since = "10m";
  ASSERT_TRUE(q.resolve(3600'000'000'000ull));
  EXPECT_EQ(q.since_ns, 3000'000'000'000ull);
  q.since = "10 minutes";
  auto st = q.resolve(0);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("--since '10 minutes'"), std::string::npos);
}

TEST(TopTable, RatesErrorsAndLatencyQuantilesPerProcessAndEndpoint) {
  TopTable t;
  auto call = [](int pid, const char* comm, const char* path, int status, uint64_t latency) {
    return nlohmann::json{{"kind", "api_call"},
                          {"role", "server"},
                          {"process", {{"pid", pid}, {"comm", comm}}},
                          {"request", {{"method", "GET"}, {"host", "127.0.0.1:8080"}, {"path", path}}},
                          {"response", {{"status", status}}},
                          {"endpoint", std::string(path) == "/health" ? "" : "/users/{id}"},
                          {"latency_ns", latency}};
  };
  for (int i = 1; i <= 100; ++i) t.add(call(10, "nginx", "/users/7", i <= 5 ? 503 : i <= 15 ? 404 : 200, i * 1'000'000ull));
  for (int i = 0; i < 10; ++i) t.add(call(20, "api", "/health", 200, 500'000));
  t.add(nlohmann::json{{"kind", "connection"}});  // not an API call
  t.add(nlohmann::json::parse(R"({"kind":"api_call","response":"garbage","latency_ns":-1,"endpoint":5,"process":{"comm":7}})"));  // malformed: counted, no crash
  EXPECT_EQ(t.calls(), 111u);
  auto j = t.to_json(2.0, 10);
  ASSERT_GE(j["processes"].size(), 2u);
  const auto& top = j["processes"][0];
  EXPECT_EQ(top["pid"], 10);
  EXPECT_EQ(top["comm"], "nginx");
  EXPECT_EQ(top["requests"], 100);
  EXPECT_DOUBLE_EQ(top["rate"].get<double>(), 50.0);
  EXPECT_EQ(top["server_errors"], 5);
  EXPECT_EQ(top["client_errors"], 10);
  EXPECT_NEAR(top["p50_ns"].get<double>(), 50e6, 1.5e6);
  EXPECT_NEAR(top["p95_ns"].get<double>(), 95e6, 1.5e6);
  // Endpoints by template; a call without one by its path.
  ASSERT_GE(j["endpoints"].size(), 2u);
  EXPECT_EQ(j["endpoints"][0]["endpoint"], "/users/{id}");
  EXPECT_EQ(j["endpoints"][1]["endpoint"], "/health");
  std::string text = t.render(2.0, 10);
  EXPECT_NE(text.find("111 API calls in 2.0 s"), std::string::npos) << text;
  EXPECT_NE(text.find("nginx"), std::string::npos);
  EXPECT_NE(text.find("127.0.0.1:8080/users/{id}"), std::string::npos) << text;
  EXPECT_EQ(t.to_json(2.0, 1)["processes"].size(), 1u) << "rows caps each table";
  t.clear();
  EXPECT_EQ(t.calls(), 0u);
  EXPECT_TRUE(t.to_json(1.0, 10)["processes"].empty());
}

TEST(TopTable, ASampleKeepsQuantilesBoundedForBusyRows) {
  TopTable t;
  for (uint64_t i = 1; i <= 100'000; ++i)
    t.add(nlohmann::json{{"kind", "api_call"}, {"process", {{"pid", 1}, {"comm", "x"}}}, {"latency_ns", i}});
  auto row = t.to_json(1.0, 5)["processes"][0];
  EXPECT_EQ(row["requests"], 100000);
  EXPECT_NEAR(row["p95_ns"].get<double>(), 95000, 3000) << "the reservoir stays representative";
}

// Security review F18: a Host header, a path or a comm carrying escape
// sequences was printed raw into root's terminal by trace, events, top and map.
TEST(SecurityF18, HumanOutputHoldsNoControlCharacters) {
  nlohmann::json e = nlohmann::json::parse(R"({"kind":"api_call","time":"2026-12-07T10:00:00.000000000Z","role":"server",
    "protocol":"http/1.1","process":{"pid":1,"comm":"ev\u001b]0;owned\u0007il"},
    "request":{"method":"GET","host":"\u001b[2K\u001b[1Ahost","path":"/a\u009b31m\r\n/x"},
    "response":{"status":200}})");
  auto clean = [](const std::string& s) {
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == 0x7f) return false;
      if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
          static_cast<unsigned char>(s[i + 1]) <= 0x9f)
        return false;
    }
    return true;
  };
  std::string line = human_line(e);
  EXPECT_TRUE(clean(line)) << line;
  EXPECT_NE(line.find("\\x1b[2K"), std::string::npos) << line;  // shown, not obeyed
  EXPECT_NE(line.find("\\u009b31m"), std::string::npos) << line;
  TopTable t;
  t.add(e);
  std::string table = t.render(1.0, 10);
  table.erase(std::remove(table.begin(), table.end(), '\n'), table.end());  // its own line ends
  EXPECT_TRUE(clean(table)) << table;
  nlohmann::json reply = {{"endpoints", {{{"host", "\u001b[2Kx"}, {"\u001bkey", "v\u0007"}}}}};
  make_terminal_safe(reply);
  EXPECT_TRUE(clean(reply.dump())) << reply.dump();
  EXPECT_EQ(terminal_safe("plain ünïcode ✓"), "plain ünïcode ✓");
}

}  // namespace
}  // namespace vigil::cli
