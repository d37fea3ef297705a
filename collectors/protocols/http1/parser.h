// Incremental HTTP/1.x parser for one direction of a reassembled stream.
// Zero-copy over the bytes it is given: only the fields an api_call needs are
// copied out. Bodies are counted, not buffered (a capped prefix may be kept).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::http1 {

// Where a parse stands (Pixie's parse_state): the caller acts on each.
enum class ParseState {
  kInvalid,        // not valid HTTP/1.x here: resynchronise
  kNeedsMoreData,  // valid so far; call again with more bytes
  kIgnored,        // not HTTP at all (e.g. TLS or a binary protocol)
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

  std::string_view header(std::string_view lower_name) const;
};

struct Limits {
  size_t max_head = 16384;  // larger heads are invalid (oversized headers)
  size_t max_headers = 100;
  size_t body_keep = 0;  // captured body prefix to keep per message
};

// Parses a start line and headers from `buf`. On kSuccess, `consumed` is the
// head's length including the blank line. kIgnored when `buf` cannot start an
// HTTP/1.x message of `kind` at all.
ParseState parse_head(std::string_view buf, Kind kind, const Limits& limits, Message* out,
                      size_t* consumed);

// Reports whether `buf` could begin a message of `kind` (used to resynchronise).
bool looks_like_start(std::string_view buf, Kind kind);

// One direction of one connection: feed bytes in stream order, with gaps where
// capture missed bytes; completed messages queue up in `messages()`.
class StreamParser {
 public:
  explicit StreamParser(Kind kind, Limits limits = {}) : kind_(kind), limits_(limits) {}

  void feed(std::string_view data, uint64_t ts);
  // `n` bytes of the stream were not captured.
  void gap(uint64_t n, uint64_t ts);
  // The peer closed: completes a body delimited by connection close.
  void end(uint64_t ts);

  // Responses need the request method to frame the body (HEAD, CONNECT):
  // the pairing layer pushes each request's method in order.
  void push_request_method(std::string method) { methods_.push_back(std::move(method)); }

  std::deque<Message>& messages() { return done_; }
  // The message whose head is parsed and whose body is still arriving, if any.
  const Message* body_in_progress() const {
    bool body = state_ == State::kBodyFixed || state_ == State::kChunkSize || state_ == State::kChunkData ||
                state_ == State::kChunkDataEnd || state_ == State::kTrailers;
    return body ? &cur_ : nullptr;
  }
  bool ignored() const { return state_ == State::kIgnored; }
  uint64_t invalid_count() const { return invalid_; }

 private:
  enum class State {
    kHead, kBodyFixed, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kBodyUntilClose,
    kResync, kIgnored, kTunnel,
  };
  void on_head_complete();
  void finish_message(uint64_t ts);
  void keep_body(std::string_view data);
  void resync(uint64_t ts);
  // Consumes one CRLF- or LF-terminated line from `data` into line_; true when whole.
  bool take_line(std::string_view& data);

  Kind kind_;
  Limits limits_;
  State state_ = State::kHead;
  std::string buf_;   // partial head or chunk-size/trailer line
  Message cur_;
  uint64_t remaining_ = 0;
  bool seen_any_ = false;
  std::deque<std::string> methods_;
  std::deque<Message> done_;
  uint64_t invalid_ = 0;
};

}  // namespace vigil::http1
