#include "agent/events/json_writer.h"

#include <cstdint>
#include <cstring>

#include <emmintrin.h>

namespace vigil {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t utf8_len(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (n == 0 || c > 0xF4 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  if (n == 3 && ((c == 0xE0 && b(i + 1) < 0xA0) || (c == 0xED && b(i + 1) > 0x9F))) return 0;
  if (n == 4 && ((c == 0xF0 && b(i + 1) < 0x90) || (c == 0xF4 && b(i + 1) > 0x8F))) return 0;
  return n;
}

// Bit i set where byte i of v is < 0x20, '"', '\\' or >= 0x80 (signed compare:
// those are negative).
inline unsigned special_mask(__m128i v) {
  __m128i low = _mm_cmpgt_epi8(_mm_set1_epi8(0x20), v);
  __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
  __m128i bslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(low, _mm_or_si128(quote, bslash))));
}

// 16 bytes from p, of which the caller uses fewer than 16: the load stays inside
// p's page, so it cannot fault, but it reads past the string (the bytes beyond
// are masked off), which the address sanitizer would report.
__attribute__((no_sanitize("address"))) inline __m128i load_tail(const char* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// 16 bytes from p can be loaded without leaving p's page (so without faulting).
inline bool page_safe(const char* p) { return (reinterpret_cast<uintptr_t>(p) & 4095) <= 4096 - 16; }

// Length of the prefix of s that is copied as it is (SSE2, 16 bytes a step).
size_t plain_prefix(std::string_view s) {
  const char* d = s.data();
  size_t n = s.size(), i = 0;
  for (; i + 16 <= n; i += 16)
    if (unsigned m = special_mask(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i))))
      return i + static_cast<size_t>(__builtin_ctz(m));
  if (i == n) return n;
  size_t left = n - i;
  if (page_safe(d + i)) {
    unsigned m = special_mask(load_tail(d + i)) & ((1u << left) - 1);
    return m ? i + static_cast<size_t>(__builtin_ctz(m)) : n;
  }
  for (; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(d[i]);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return i;
  }
  return n;
}

}  // namespace

void JsonWriter::grow(size_t n) {
  size_t want = out_.size() * 2;
  if (want < pos_ + n) want = pos_ + n;
  out_.resize(want);
}

void JsonWriter::string_raw(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Up to 16 bytes (most keys and values): one load, one check, one store, no calls.
  if (size_t n = s.size(); n - 1 < 16 && page_safe(s.data())) {
    __m128i v = load_tail(s.data());
    if (!(special_mask(v) & ((2u << (n - 1)) - 1))) {
      char* p = room(18);
      p[0] = '"';
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 1), v);
      p[n + 1] = '"';
      pos_ -= 16 - n;
      return;
    }
  }
  size_t i = plain_prefix(s);
  if (i == s.size()) {  // nearly every string: one scan, one copy
    char* p = room(s.size() + 2);
    p[0] = '"';
    std::memcpy(p + 1, s.data(), s.size());
    p[s.size() + 1] = '"';
    return;
  }
  put('"');
  size_t run = 0;  // start of bytes that need no escaping
  while (i < s.size()) {
    i += plain_prefix(s.substr(i));  // the next byte that needs a look
    if (i >= s.size()) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (size_t n = utf8_len(s, i)) {
        i += n;
        continue;
      }
    }
    put(s.substr(run, i - run));
    switch (c) {
      case '"': put("\\\""); break;
      case '\\': put("\\\\"); break;
      case '\n': put("\\n"); break;
      case '\r': put("\\r"); break;
      case '\t': put("\\t"); break;
      case '\b': put("\\b"); break;
      case '\f': put("\\f"); break;
      default:
        if (c < 0x20) {
          char* p = room(6);
          std::memcpy(p, "\\u00", 4);
          p[4] = kHex[c >> 4];
          p[5] = kHex[c & 15];
        } else {
          put("\xEF\xBF\xBD");  // U+FFFD for a byte that is not valid UTF-8
        }
    }
    ++i;
    run = i;
  }
  put(s.substr(run));
  put('"');
}

}  // namespace vigil
