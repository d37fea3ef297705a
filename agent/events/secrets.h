// Which header names, parameter names and values are credentials: one list for
// the redaction of api_call events (api_call.cc) and the inventory's auth-scheme
// detection (agent/apimap/auth.cc), so that what the inventory counts as a
// credential never ships (security review F10, F11).
#pragma once

#include <string>
#include <string_view>

namespace vigil::secrets {

inline constexpr std::string_view kRedacted = "[redacted]";

// Header names (lower case) that carry an API key: the api_key_header scheme.
bool is_api_key_header(std::string_view lower_name);
// Every credential header (lower case): Authorization, cookies, the API-key
// headers, and names shaped like one (*-token, *-key, *secret*, *auth*,
// *session*, *password*, *credential*, *signature*).
bool is_secret_header(std::string_view lower_name);
// Query parameter names (any case) that carry an API key: the api_key_query scheme.
bool is_api_key_param(std::string_view name);
// Every parameter or JSON key name (any case) whose value is a secret.
bool is_secret_param(std::string_view name);
// "eyJ…" with two dots: a JWT, under any name.
bool looks_like_jwt(std::string_view v);
// A path segment shaped like a credential: a JWT, a known token prefix (ghp_,
// xoxb-, sk_live_, AKIA…), a bot token ("bot123:…"), or a long random string of
// letters and digits (base64, hex).
bool looks_like_token(std::string_view segment);
// `path` with every token-shaped segment, and the segment after a word that
// announces one (/reset/…, /tokens/…, /invite/…), replaced by kRedacted.
std::string redact_path(std::string_view path);
// "user:pass@host:port" -> "host:port" (userinfo in an absolute-form target).
std::string_view strip_userinfo(std::string_view authority);

}  // namespace vigil::secrets
