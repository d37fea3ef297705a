// The filters of `vigil trace` and `vigil events` on event JSON.
#include <gtest/gtest.h>

#include "agent/cli/event_query.h"

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

}  // namespace
}  // namespace vigil::cli
