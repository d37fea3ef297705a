// Paired exchanges (HTTP/1.x, HTTP/2, gRPC) -> api_call events: path/query split
// and redaction of secrets before anything leaves the host.
#pragma once

#include <string>
#include <string_view>

#include "agent/events/events.h"
#include "collectors/protocols/common/message.h"

namespace vigil {

inline constexpr std::string_view kRedacted = "[redacted]";

struct ApiCallOptions {
  bool bodies = false;  // ship (redacted, capped) bodies
};

// Authorization, Cookie, Set-Cookie and other credential headers.
bool is_secret_header(std::string_view lower_name);
// Replaces the values of token-like query parameters (and JWT-shaped values).
std::string redact_query(std::string_view query);
// Replaces secret values in a body: JSON string values of token-like keys
// ("password": "…"), and form-encoded pairs as in a query. Other bytes stay.
std::string redact_body(std::string_view body, std::string_view content_type);

ApiCallEvent make_api_call(const protocols::Exchange& x, const ConnRef& conn,
                           const ApiCallOptions& options);

}  // namespace vigil
