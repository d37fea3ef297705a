// base/fields.h: the header fields of a message in one buffer.
#include "base/fields.h"

#include <gtest/gtest.h>

#include <string>

namespace vigil {
namespace {

TEST(Fields, KeepsOrderAndLooksUpByName) {
  Fields f{{"host", "api.test"}, {"accept", "*/*"}};
  f.emplace_back("x-request-id", std::string(40, 'a'));
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], Fields::Field("host", "api.test"));
  EXPECT_EQ(f.get("x-request-id"), std::string(40, 'a'));
  EXPECT_EQ(f.get("accep"), "");
  EXPECT_EQ(f.find("accept"), 1u);
  EXPECT_EQ(f.find("nope"), 3u);
  std::string joined;
  for (const auto& [k, v] : f) joined += std::string(k) + "=" + std::string(v) + ";";
  EXPECT_EQ(joined, "host=api.test;accept=*/*;x-request-id=" + std::string(40, 'a') + ";");
}

TEST(Fields, AppendsToAnyValueAndCopiesStayWhole) {
  Fields f{{"vary", "a"}, {"server", "nginx"}};
  f.append_value(1, "/1.22");  // the last field: grows in place
  f.append_value(0, ", b");    // not the last: moves to the end of the buffer
  EXPECT_EQ(f[0], Fields::Field("vary", "a, b"));
  EXPECT_EQ(f[1], Fields::Field("server", "nginx/1.22"));
  Fields copy = f;
  f.clear();
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(copy.get("vary"), "a, b");
  EXPECT_EQ(copy, (Fields{{"vary", "a, b"}, {"server", "nginx/1.22"}}));
  char* n = copy.name_data(1);
  n[0] = 'S';
  EXPECT_EQ(copy[1].first, "Server");
}

}  // namespace
}  // namespace vigil
