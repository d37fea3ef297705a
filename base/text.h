// Character classes and a measure of randomness for short strings: what the
// path templater and the secret detector both ask of a path segment or a value.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

namespace vigil::text {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// 8-4-4-4-12 hex digits: an identifier, typed "uuid" by the templater and
// never taken for a secret.
inline bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

// "report.pdf" -> {"report", ".pdf"}; no extension (1 to 5 letters and
// digits, at least one letter) -> {seg, ""}.
inline std::pair<std::string_view, std::string_view> split_extension(std::string_view seg) {
  if (seg.size() < 3 || std::memchr(seg.data(), '.', seg.size()) == nullptr) return {seg, {}};  // most segments
  size_t dot = seg.rfind('.');
  if (dot == 0) return {seg, {}};
  std::string_view ext = seg.substr(dot + 1);
  if (ext.empty() || ext.size() > 5 || !std::all_of(ext.begin(), ext.end(), [](char c) { return is_digit(c) || is_alpha(c); }) ||
      std::none_of(ext.begin(), ext.end(), is_alpha))
    return {seg, {}};
  return {seg.substr(0, dot), seg.substr(dot)};
}

inline char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Whether `hay` holds `lower_needle` (lower-case ASCII) in any letter case.
inline bool contains_ascii_ci(std::string_view hay, std::string_view lower_needle) {
  for (size_t i = 0; i + lower_needle.size() <= hay.size(); ++i) {
    size_t k = 0;
    while (k < lower_needle.size() && lower_ascii(hay[i + k]) == lower_needle[k]) ++k;
    if (k == lower_needle.size()) return true;
  }
  return false;
}

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
