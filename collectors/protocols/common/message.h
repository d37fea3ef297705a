// The protocol-neutral message model every protocol parser fills (HTTP/1.x,
// HTTP/2 and gRPC alike) and the parse states parsers report.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::protocols {

// Where a parse stands (Pixie's parse_state): the caller acts on each.
enum class ParseState {
  kInvalid,        // not valid here: resynchronise
  kNeedsMoreData,  // valid so far; call again with more bytes
  kIgnored,        // not this protocol at all (e.g. TLS or a binary protocol)
  kSuccess,        // one unit parsed; `consumed` says how far
};

enum class Kind { kRequest, kResponse };

using Headers = std::vector<std::pair<std::string, std::string>>;  // names lower-cased

struct Message {
  Kind kind = Kind::kRequest;
  std::string method;  // requests
  std::string target;  // requests: origin-form "/path?query", or absolute/authority form
  int status = 0;      // responses
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

  std::string_view header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
      if (k == lower_name) return v;
    return {};
  }
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
