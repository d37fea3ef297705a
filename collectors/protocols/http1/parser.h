// Incremental HTTP/1.x parser for one direction of a reassembled stream.
// Zero-copy over the bytes it is given: only the fields an api_call needs are
// copied out. Bodies are counted, not buffered (a capped prefix may be kept).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "collectors/protocols/common/message.h"

namespace vigil::http1 {

using protocols::Headers;
using protocols::Kind;
using protocols::Limits;
using protocols::Message;
using protocols::ParseState;

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
  // Only what frames a response is kept, one byte a request, at most
  // kMaxMethods (security review F9): past that the oldest is framed as a GET.
  void push_request_method(std::string_view method) {
    if (methods_.size() >= kMaxMethods) {
      methods_.pop_front();
      ++unknown_methods_;
    }
    methods_.push_back(method == "HEAD" ? kHead : method == "CONNECT" ? kConnect : kOther);
  }
  static constexpr size_t kMaxPending = 64;      // whole requests awaiting their response, per connection
  static constexpr size_t kMaxMethods = 65536;   // their methods, for framing the responses
  // The response side switched protocols (101, CONNECT 2xx): the bytes after it
  // are no longer HTTP/1.x.
  bool tunneled() const { return state_ == State::kTunnel; }
  // Stops parsing (the other direction tunneled).
  void stop() {
    state_ = State::kTunnel;
    buf_.clear();
  }

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
  int interim_ = 0;  // interim responses since the last final one
  bool seen_any_ = false;
  enum MethodKind : uint8_t { kOther, kHead, kConnect };
  std::deque<MethodKind> methods_;
  uint64_t unknown_methods_ = 0;  // responses ahead whose request's method was dropped
  std::deque<Message> done_;
  uint64_t invalid_ = 0;
};

}  // namespace vigil::http1
