#include "agent/apimap/auth.h"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "agent/apimap/template.h"
#include "agent/events/secrets.h"

namespace vigil::apimap {
namespace {

using StringMapJwt = StringMap<std::optional<Jwt>>;

constexpr std::array<std::string_view, kAuthSchemeCount> kNames = {
    "none", "basic", "bearer", "jwt", "api_key_header", "api_key_query", "cookie", "mtls"};

char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// `prefix` is lower case.
bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (lower_ascii(s[i]) != prefix[i]) return false;
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && iequals_prefix(a, b);
}

bool icontains(std::string_view s, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= s.size(); ++i)
    if (iequals_prefix(s.substr(i), needle)) return true;
  return false;
}

bool session_cookie(std::string_view n) {
  return icontains(n, "sess") || iequals(n, "sid") || icontains(n, "token") || icontains(n, "auth");
}

}  // namespace

std::string_view auth_name(int bit) { return bit >= 0 && bit < kAuthSchemeCount ? kNames[bit] : "?"; }

std::vector<std::string> auth_names(uint16_t mask) { return names_of(mask, kNames); }

uint16_t auth_mask_from_names(const std::vector<std::string>& names) { return mask_of(names, kNames); }

std::optional<std::string> base64url_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-' || c == '+') return 62;
    if (c == '_' || c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) return std::nullopt;
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xff));
    }
  }
  if (bits >= 6) return std::nullopt;  // a dangling single character
  return out;
}

namespace {

// A NumericDate claim (RFC 7519 §2): a JSON number of seconds. Anything outside
// ±2^53 (1e300, 9e18) is not a date a real token carries, and converting it
// would be undefined behaviour (security review F17).
std::optional<int64_t> json_seconds(const nlohmann::json& claims, const char* name) {
  constexpr double kMax = 9007199254740992.0;  // 2^53
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned()) {
      auto u = it->get<uint64_t>();
      return u <= static_cast<uint64_t>(kMax) ? std::optional<int64_t>(static_cast<int64_t>(u)) : std::nullopt;
    }
    auto v = it->get<int64_t>();
    return v >= -static_cast<int64_t>(kMax) && v <= static_cast<int64_t>(kMax) ? std::optional<int64_t>(v)
                                                                                : std::nullopt;
  }
  double d = it->get<double>();
  if (!(d >= -kMax && d <= kMax)) return std::nullopt;  // NaN too
  return static_cast<int64_t>(d);
}

}  // namespace

std::optional<Jwt> parse_jwt(std::string_view token) {
  size_t d1 = token.find('.');
  if (d1 == std::string_view::npos || d1 == 0) return std::nullopt;
  size_t d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || d2 == d1 + 1 || token.find('.', d2 + 1) != std::string_view::npos)
    return std::nullopt;
  auto head = base64url_decode(token.substr(0, d1));
  auto body = base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
  if (!head || !body) return std::nullopt;
  auto h = nlohmann::json::parse(*head, nullptr, false);
  auto p = nlohmann::json::parse(*body, nullptr, false);
  if (!h.is_object() || !p.is_object()) return std::nullopt;
  auto alg = h.find("alg");
  if (alg == h.end() || !alg->is_string()) return std::nullopt;
  Jwt j;
  j.alg = alg->get<std::string>();
  if (auto i = p.find("iss"); i != p.end() && i->is_string()) j.iss = i->get<std::string>().substr(0, 128);
  j.exp = json_seconds(p, "exp");
  j.iat = json_seconds(p, "iat");
  return j;
}

namespace {

// A client sends the same token call after call: decode each once (bounded).
std::optional<Jwt> parse_jwt_cached(std::string_view token) {
  if (token.find('.') == std::string_view::npos) return std::nullopt;
  thread_local StringMapJwt cache;
  if (auto it = cache.find(token); it != cache.end()) return it->second;
  if (cache.size() >= 4096) cache.clear();
  auto j = parse_jwt(token);
  cache.emplace(std::string(token), j);
  return j;
}

}  // namespace

AuthSeen detect_auth(const protocols::Headers& headers, std::string_view query) {
  AuthSeen a;
  uint16_t m = 0;
  for (const auto& [k, v] : headers) {
    if (k.size() < 6) continue;  // no credential header is shorter than "cookie"
    if (k.size() == 13 && k == "authorization") {
      std::string_view val = v;
      if (iequals_prefix(val, "basic ")) {
        m |= kAuthBasic;
      } else if (iequals_prefix(val, "bearer ")) {
        std::string_view tok = val.substr(7);
        while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
        if (auto j = parse_jwt_cached(tok)) {
          m |= kAuthJwt;
          a.jwt = std::move(j);
        } else {
          m |= kAuthBearer;
        }
      } else if (!val.empty()) {
        m |= kAuthApiKeyHeader;  // "Token …", "ApiKey …", custom schemes
        a.key_name = "authorization";
      }
    } else if (secrets::is_api_key_header(k)) {
      m |= kAuthApiKeyHeader;
      a.key_name = k;
    } else if (k.size() == 6 && k == "cookie") {
      std::string_view c = v;
      while (!c.empty()) {
        size_t semi = c.find(';');
        std::string_view pair = c.substr(0, semi);
        while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
        std::string_view name = pair.substr(0, pair.find('='));
        if (session_cookie(name)) {
          m |= kAuthCookie;
          a.cookie_name = std::string(name);
        }
        if (semi == std::string_view::npos) break;
        c.remove_prefix(semi + 1);
      }
    }
  }
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(start, amp - start);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && eq + 1 < pair.size() && secrets::is_api_key_param(pair.substr(0, eq))) {
      m |= kAuthApiKeyQuery;
      a.key_name = std::string(pair.substr(0, eq));
    }
    start = amp + 1;
  }
  a.schemes = m ? m : static_cast<uint16_t>(kAuthNone);
  return a;
}

}  // namespace vigil::apimap
