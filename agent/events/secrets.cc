#include "agent/events/secrets.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace vigil::secrets {
namespace {

char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower_ascii(a[i]) != b[i]) return false;
  return true;
}

// `needle` is lower case.
bool icontains(std::string_view s, std::string_view needle) {
  if (needle.size() > s.size()) return false;
  for (size_t i = 0; i + needle.size() <= s.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && lower_ascii(s[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

bool iends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

template <size_t N>
bool any_iequal(std::string_view n, const std::array<std::string_view, N>& list) {
  return std::any_of(list.begin(), list.end(), [&](std::string_view k) { return iequals(n, k); });
}

template <size_t N>
bool any_icontained(std::string_view n, const std::array<std::string_view, N>& list) {
  return std::any_of(list.begin(), list.end(), [&](std::string_view k) { return icontains(n, k); });
}

constexpr std::array<std::string_view, 9> kApiKeyHeaders = {
    "x-api-key", "api-key", "apikey", "x-apikey", "x-auth-token", "x-access-token", "x-api-token",
    "x-goog-api-key", "ocp-apim-subscription-key"};

// Name parts that make any header or parameter a secret.
constexpr std::array<std::string_view, 8> kSecretParts = {"token",  "secret", "passw",      "pwd",
                                                          "auth",   "session", "credential", "signature"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool token_char(char c) { return is_digit(c) || is_alpha(c) || c == '_' || c == '-' || c == '=' || c == '.'; }

double entropy_bits(std::string_view s) {
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

// Path words after which the next segment is a secret whatever its shape.
bool announces_token(std::string_view w) {
  static constexpr std::array<std::string_view, 14> kWords = {
      "reset",  "token",    "tokens",     "verify", "verification", "confirm", "activate",
      "invite", "invites",  "magic-link", "magic",  "unsubscribe",  "password", "passwords"};
  return w.size() >= 5 && any_iequal(w, kWords);
}

}  // namespace

bool is_api_key_header(std::string_view n) {
  if (n.size() < 6 || n.size() > 25) return false;
  return std::find(kApiKeyHeaders.begin(), kApiKeyHeaders.end(), n) != kApiKeyHeaders.end();
}

bool is_secret_header(std::string_view n) {
  // Exact names by length first: this runs for every header of every call.
  switch (n.size()) {
    case 6: if (n == "cookie") return true; break;
    case 10: if (n == "set-cookie") return true; break;
    case 13: if (n == "authorization") return true; break;
    case 19: if (n == "proxy-authorization") return true; break;
    default: break;
  }
  if (n.size() < 3) return false;
  if (is_api_key_header(n)) return true;
  if (n.ends_with("-key") || n.ends_with("_key") || n.ends_with("-token") || n.ends_with("_token")) return true;
  return any_icontained(n, kSecretParts) || n.find("private") != std::string_view::npos;
}

bool is_api_key_param(std::string_view n) {
  static constexpr std::array<std::string_view, 7> kKeys = {"api_key", "apikey", "api-key", "key",
                                                            "access_token", "token", "auth_token"};
  return n.size() >= 3 && n.size() <= 12 && any_iequal(n, kKeys);
}

bool is_secret_param(std::string_view n) {
  if (n.empty()) return false;
  if (is_api_key_param(n) || any_icontained(n, kSecretParts)) return true;
  static constexpr std::array<std::string_view, 6> kParts = {"apikey", "api_key", "api-key", "jwt", "private", "otp"};
  if (any_icontained(n, kParts)) return true;
  if (iends_with(n, "_key") || iends_with(n, "-key") || icontains(n, "accesskey")) return true;
  static constexpr std::array<std::string_view, 6> kExact = {"key", "sig", "code", "access", "pass", "pin"};
  return any_iequal(n, kExact);
}

bool looks_like_jwt(std::string_view v) {
  return v.size() > 20 && v.substr(0, 3) == "eyJ" && std::count(v.begin(), v.end(), '.') == 2;
}

bool looks_like_token(std::string_view s) {
  if (s.size() < 16) return false;
  if (looks_like_jwt(s)) return true;
  static constexpr std::array<std::string_view, 14> kPrefixes = {
      "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "xoxa-",
      "sk_live_", "sk_test_", "rk_live_", "AIza"};
  for (auto p : kPrefixes)
    if (s.starts_with(p)) return true;
  if (s.size() == 20 && (s.starts_with("AKIA") || s.starts_with("ASIA"))) return true;
  // "bot123456789:AAE…" (chat bot tokens in the path)
  if (s.starts_with("bot") && s.find(':') != std::string_view::npos) return true;
  if (!std::all_of(s.begin(), s.end(), token_char)) return false;
  size_t digits = std::count_if(s.begin(), s.end(), is_digit);
  size_t letters = std::count_if(s.begin(), s.end(), is_alpha);
  if (s.size() >= 32 && std::all_of(s.begin(), s.end(), is_hex)) return true;  // hex secrets, digests
  return s.size() >= 20 && digits >= 2 && letters >= 4 && entropy_bits(s) >= 3.5;
}

std::string redact_path(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  std::string_view prev;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(start, slash - start);
    bool secret = !seg.empty() && (looks_like_token(seg) || (announces_token(prev) && seg.size() >= 8));
    out.append(secret ? kRedacted : seg);
    if (slash < path.size()) out += '/';
    prev = seg;
    start = slash + 1;
  }
  return out;
}

std::string_view strip_userinfo(std::string_view authority) {
  size_t at = authority.rfind('@');
  return at == std::string_view::npos ? authority : authority.substr(at + 1);
}

}  // namespace vigil::secrets
