// Paired exchanges (HTTP/1.x, HTTP/2, gRPC) -> api_call events: path/query split
// and redaction of secrets before anything leaves the host.
#pragma once

#include <string>
#include <string_view>

#include "agent/config/config.h"
#include "agent/events/events.h"
#include "agent/events/secrets.h"
#include "collectors/protocols/common/message.h"

namespace vigil {

using secrets::kRedacted;

struct ApiCallOptions {
  bool bodies = false;  // ship (redacted, capped) bodies
};

// Replaces the values of token-like query parameters (and JWT-shaped values).
std::string redact_query(std::string_view query);
// Replaces secret values in a body: JSON values of token-like keys ("password":
// "…", "pin": 1234, "tokens": […]), and form-encoded pairs as in a query. A body
// of another type (XML, multipart, text) could hold secrets anywhere: it is
// replaced whole.
std::string redact_body(std::string_view body, std::string_view content_type);

// Without the payload (headers, bodies: the costly redaction) when the event may
// not be shipped; add_api_call_payload adds it later.
ApiCallEvent make_api_call(const protocols::Exchange& x, const ConnRef& conn, const ApiCallOptions& options,
                           bool with_payload = true);
// What the capture level gives the event: nothing at metadata, the (redacted)
// header fields at headers, and the bodies too at full (when options.bodies).
void add_api_call_payload(ApiCallEvent& a, const protocols::Exchange& x, const ApiCallOptions& options,
                          CaptureLevel level = CaptureLevel::kFull);
// The same, taking the exchange's header fields instead of copying them (`x` is done with).
void add_api_call_payload(ApiCallEvent& a, protocols::Exchange&& x, const ApiCallOptions& options,
                          CaptureLevel level = CaptureLevel::kFull);

}  // namespace vigil
