// Character classes and a measure of randomness for short strings: what the
// path templater and the secret detector both ask of a path segment or a value.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace vigil::text {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Shannon entropy of `s`'s bytes, in bits per byte.
inline double entropy_bits(std::string_view s) {
  std::array<uint16_t, 256> freq{};
  for (unsigned char c : s) ++freq[c];
  double h = 0;
  for (uint16_t f : freq)
    if (f) {
      double p = static_cast<double>(f) / static_cast<double>(s.size());
      h -= p * std::log2(p);
    }
  return h;
}

}  // namespace vigil::text
