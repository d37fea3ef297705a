// The protocol-neutral message model every protocol parser fills (HTTP/1.x,
// HTTP/2 and gRPC alike) and the parse states parsers report.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/fields.h"

namespace vigil::protocols {

// Where a parse stands (Pixie's parse_state): the caller acts on each.
enum class ParseState {
  kInvalid,        // not valid here: resynchronise
  kNeedsMoreData,  // valid so far; call again with more bytes
  kIgnored,        // not this protocol at all (e.g. TLS or a binary protocol)
  kSuccess,        // one unit parsed; `consumed` says how far
};

enum class Kind { kRequest, kResponse };

using Headers = vigil::Fields;  // names lower-cased

// A request target split as RFC 9112 §3.2 reads it: origin form "/path?query",
// absolute form "http://host:port/path?query" (the authority ends at the first
// '/', '?' or '#'), a fragment never part of path or query (clients should not
// send one; some do).
struct Target {
  std::string_view authority;  // absolute form only
  std::string_view path;       // "/" when the absolute form has none
  std::string_view query;
  bool has_query = false;
};

inline Target split_target(std::string_view t) {
  Target out;
  if (size_t hash = t.find('#'); hash != std::string_view::npos) t = t.substr(0, hash);
  if (size_t scheme = t.find("://"); scheme != std::string_view::npos && !t.empty() && t[0] != '/') {
    std::string_view rest = t.substr(scheme + 3);
    size_t end = rest.find_first_of("/?");
    out.authority = rest.substr(0, end);
    t = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    if (t.empty() || t[0] == '?') out.path = "/";
  }
  size_t q = t.find('?');
  if (out.path.empty()) out.path = t.substr(0, q);
  if (q != std::string_view::npos) {
    out.query = t.substr(q + 1);
    out.has_query = true;
  }
  return out;
}

struct Message {
  Kind kind = Kind::kRequest;
  std::string method;  // requests
  std::string target;  // requests: origin-form "/path?query", or absolute/authority form
  int status = 0;      // responses
  int interim = 0;     // responses: interim (1xx) responses before this final one, e.g. 100 Continue
  int version_minor = 1;
  int version_major = 1;  // 2: an HTTP/2 stream (headers decoded from HPACK)
  Headers headers;
  uint64_t head_bytes = 0;
  uint64_t body_bytes = 0;  // true body length as framed on the wire (chunk framing excluded)
  bool chunked = false;
  bool truncated = false;  // part of the message was not captured (cap or gap)
  bool connection_close = false;
  uint64_t first_ts = 0;  // ns of the syscall that carried the first byte
  uint64_t last_ts = 0;   // ns of the syscall that carried the last byte
  std::string body;       // up to `body_keep` captured bytes

  std::string_view header(std::string_view lower_name) const { return headers.get(lower_name); }
};

// A request paired with its response: one API call.
struct Exchange {
  Message request;
  Message response;
};

struct Limits {
  size_t max_head = 16384;  // larger heads are invalid (oversized headers)
  size_t max_headers = 100;
  size_t body_keep = 0;  // captured body prefix to keep per message
};

}  // namespace vigil::protocols
