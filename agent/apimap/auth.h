// How a call authenticates, from its request headers and query (before any
// redaction): basic, bearer, JWT (alg, exp, issuer decoded — never kept whole),
// API keys in a header or the query, cookie sessions. Values are never stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/protocols/common/message.h"

namespace vigil::apimap {

enum AuthScheme : uint16_t {
  kAuthNone = 1 << 0,
  kAuthBasic = 1 << 1,
  kAuthBearer = 1 << 2,
  kAuthJwt = 1 << 3,
  kAuthApiKeyHeader = 1 << 4,
  kAuthApiKeyQuery = 1 << 5,
  kAuthCookie = 1 << 6,
  kAuthMtls = 1 << 7,
};
inline constexpr int kAuthSchemeCount = 8;
// DESIGN.md §4 names: "none", "basic", "bearer", "jwt", "api_key_header", ...
std::string_view auth_name(int bit);
std::vector<std::string> auth_names(uint16_t mask);
uint16_t auth_mask_from_names(const std::vector<std::string>& names);

struct Jwt {
  std::string alg, iss;
  std::optional<int64_t> exp, iat;
};
// Decodes header and payload of a compact JWS; nullopt when it is not one.
std::optional<Jwt> parse_jwt(std::string_view token);
std::optional<std::string> base64url_decode(std::string_view in);

struct AuthSeen {
  uint16_t schemes = kAuthNone;
  std::optional<Jwt> jwt;
  std::string key_name;     // the API key's header or query parameter name
  std::string cookie_name;  // the session cookie's name
};
AuthSeen detect_auth(const protocols::Headers& headers, std::string_view query);

}  // namespace vigil::apimap
