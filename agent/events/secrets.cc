#include "agent/events/secrets.h"

#include <algorithm>
#include <array>
#include <string>

#include "base/text.h"

namespace vigil::secrets {
namespace {

char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower_ascii(a[i]) != b[i]) return false;
  return true;
}

template <size_t N>
bool any_iequal(std::string_view n, const std::array<std::string_view, N>& list) {
  return std::any_of(list.begin(), list.end(), [&](std::string_view k) { return iequals(n, k); });
}

constexpr std::array<std::string_view, 9> kApiKeyHeaders = {
    "x-api-key", "api-key", "apikey", "x-apikey", "x-auth-token", "x-access-token", "x-api-token",
    "x-goog-api-key", "ocp-apim-subscription-key"};

// Whether lower-case `n` holds a part that names a secret: token, secret, passw,
// pwd, auth, session, credential, signature, private (and for parameters also
// apikey, api_key, api-key, accesskey, jwt, otp). One pass: each byte picks the
// few parts that start with it (this runs for every header of every call).
bool has_secret_part(std::string_view n, bool param) {
  // Gated by the first two letters, so that the common names ("content-type",
  // "accept-encoding") cost a couple of instructions a byte.
  for (size_t i = 0; i + 3 <= n.size(); ++i) {
    char c = n[i], d = n[i + 1];
    std::string_view r;
    switch (c) {
      case 'a':
        if (d != 'u' && !(param && (d == 'p' || d == 'c'))) continue;
        r = n.substr(i);
        if (r.starts_with("auth")) return true;
        if (param && (r.starts_with("apikey") || r.starts_with("api_key") || r.starts_with("api-key") ||
                      r.starts_with("accesskey")))
          return true;
        break;
      case 'c':
        if (d == 'r' && n.substr(i).starts_with("credential")) return true;
        break;
      case 'j':
        if (param && d == 'w' && n[i + 2] == 't') return true;
        break;
      case 'o':
        if (param && d == 't' && n[i + 2] == 'p') return true;
        break;
      case 'p':
        if (d == 'w' && n[i + 2] == 'd') return true;
        if (d != 'a' && d != 'r') continue;
        r = n.substr(i);
        if (r.starts_with("passw") || r.starts_with("private")) return true;
        break;
      case 's':
        if (d != 'e' && d != 'i') continue;
        r = n.substr(i);
        if (r.starts_with("secret") || r.starts_with("session") || r.starts_with("signature")) return true;
        break;
      case 't':
        if (d == 'o' && n.substr(i).starts_with("token")) return true;
        break;
      default:
        break;
    }
  }
  return false;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower_ascii(c);
  return out;
}

using text::entropy_bits;
using text::is_alpha;
using text::is_digit;
using text::is_hex;
using text::is_uuid;
bool token_char(char c) { return is_digit(c) || is_alpha(c) || c == '_' || c == '-' || c == '=' || c == '.'; }

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

namespace {

bool secret_header_name(std::string_view n) {
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
  return has_secret_part(n, false);
}

}  // namespace

bool is_secret_header(std::string_view n) {
  // This runs for every header of every call, and the names repeat: the verdict
  // of each recent name is kept (direct-mapped by length and two bytes).
  struct Slot {
    std::string name;
    bool secret = false;
  };
  thread_local std::array<Slot, 256> memo;
  if (n.empty() || n.size() > 64) return secret_header_name(n);
  Slot& s = memo[(n.size() * 31 + static_cast<unsigned char>(n[0]) * 7 + static_cast<unsigned char>(n.back())) & 255];
  if (s.name != n) {
    s.name.assign(n);
    s.secret = secret_header_name(n);
  }
  return s.secret;
}

bool is_api_key_param(std::string_view n) {
  static constexpr std::array<std::string_view, 7> kKeys = {"api_key", "apikey", "api-key", "key",
                                                            "access_token", "token", "auth_token"};
  return n.size() >= 3 && n.size() <= 12 && any_iequal(n, kKeys);
}

bool is_secret_param(std::string_view name) {
  if (name.empty()) return false;
  if (is_api_key_param(name)) return true;
  std::string n = lower(name);
  if (has_secret_part(n, true) || n.ends_with("_key") || n.ends_with("-key")) return true;
  static constexpr std::array<std::string_view, 6> kExact = {"key", "sig", "code", "access", "pass", "pin"};
  return std::find(kExact.begin(), kExact.end(), n) != kExact.end();
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
  if (!std::all_of(s.begin(), s.end(), token_char) || is_uuid(s)) return false;
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
    if (secret) {
      out.append(kRedacted);
      std::string_view ext = text::split_extension(seg).second;  // "<digest>.pdf" keeps its ".pdf"
      if (!ext.empty() && looks_like_token(seg.substr(0, seg.size() - ext.size()))) out.append(ext);
    } else {
      out.append(seg);
    }
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
