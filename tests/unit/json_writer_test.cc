#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "agent/events/json_writer.h"

namespace vigil {
namespace {

std::string str(std::string_view s) {
  std::string out;
  JsonWriter(out).value(s);
  return out;
}

TEST(JsonWriter, Escapes) {
  EXPECT_EQ(str("plain"), R"("plain")");
  EXPECT_EQ(str("q\"b\\"), R"("q\"b\\")");
  EXPECT_EQ(str("a\nb\rc\td\be\f"), R"("a\nb\rc\td\be\f")");
  EXPECT_EQ(str(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  EXPECT_EQ(str("/path"), R"("/path")");
}

TEST(JsonWriter, Utf8PassesThroughAndInvalidBytesAreReplaced) {
  EXPECT_EQ(str("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  EXPECT_EQ(str("a\xFF" "b"), "\"a\xEF\xBF\xBD" "b\"");
  EXPECT_EQ(str("\xC3"), "\"\xEF\xBF\xBD\"") << "truncated sequence";
  EXPECT_EQ(str("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"") << "surrogate";
  EXPECT_EQ(str("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"") << "overlong";
}

TEST(JsonWriter, Structure) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().field("a", 1).key("b").begin_array().value(true).value("x").value(-5).end_array()
      .key("c").begin_object().end_object().field("d", uint64_t{18446744073709551615ull}).end_object();
  w.finish();  // the document is whole once the writer is done (it writes ahead into out's capacity)
  EXPECT_EQ(out, R"({"a":1,"b":[true,"x",-5],"c":{},"d":18446744073709551615})");
}

TEST(JsonWriter, GrowsPastTheBufferAndAppendsToWhatIsThere) {
  std::string out = "prefix:";
  std::string big(5000, 'a');
  big[4000] = '"';
  {
    JsonWriter w(out);
    w.begin_array();
    for (int i = 0; i < 3; ++i) w.value(big);
    w.end_array();
  }
  auto j = nlohmann::json::parse(out.substr(7));
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[2].get<std::string>(), big);
  EXPECT_EQ(out.substr(0, 7), "prefix:");
}

TEST(JsonWriter, AnyBytesGiveValidJson) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 40, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    std::string out;
    JsonWriter(out).begin_object().field("k", s).end_object();
    auto j = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << out;
  }
}

// The 16-byte scan: a byte that needs escaping is found at every position of
// strings of every length around the vector width, also where a string ends at
// the end of a page (the tail is then scanned byte by byte).
TEST(JsonWriter, SpecialByteFoundAtEveryPositionAndLength) {
  std::vector<char> page(3 * 4096, 'a');
  char* page_end = page.data() + 4096 * 2 - (reinterpret_cast<uintptr_t>(page.data()) & 4095);
  for (size_t n = 1; n <= 40; ++n) {
    for (char* base : {page.data() + 100, page_end - n}) {
      for (size_t at = 0; at < n; ++at) {
        std::fill(base, base + n, 'a');
        base[at] = '"';
        std::string want = "\"" + std::string(at, 'a') + "\\\"" + std::string(n - at - 1, 'a') + "\"";
        ASSERT_EQ(str(std::string_view(base, n)), want) << "length " << n << ", quote at " << at;
      }
      std::fill(base, base + n, 'a');
      base[n] = '"';  // just past the end: not part of the string
      ASSERT_EQ(str(std::string_view(base, n)), "\"" + std::string(n, 'a') + "\"");
      base[n] = 'a';
    }
  }
}

TEST(JsonWriter, LiteralAndRuntimeKeys) {
  std::string out;
  std::string header = "x-\"odd\"";
  JsonWriter(out).begin_object().field("v", 1).field(header, "y").end_object();
  EXPECT_EQ(out, R"({"v":1,"x-\"odd\"":"y"})");
}

}  // namespace
}  // namespace vigil
