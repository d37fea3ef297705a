#include "collectors/protocols/http1/parser.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace vigil::http1 {
namespace {

constexpr std::string_view kVersionPrefix = "HTTP/1.";

// RFC 9110 token characters mapped to their lower case, 0 for the rest: header
// names are checked and folded in one lookup per byte.
constexpr auto kTcharLower = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 256; ++c)
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) t[c] = static_cast<char>(c);
    else if (c >= 'A' && c <= 'Z') t[c] = static_cast<char>(c + 32);
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = c;
  return t;
}();

bool is_method_char(char c) { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool icontains_token(std::string_view list, std::string_view token) {
  // Comma-separated tokens, case-insensitive ("keep-alive, Upgrade").
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string_view t = list.substr(start, end - start);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (iequals(t, token)) return true;
    start = end + 1;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// "HTTP/1.x" -> minor version, or -1.
int parse_version(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 7) != kVersionPrefix || v[7] < '0' || v[7] > '9') return -1;
  return v[7] - '0';
}

ParseState parse_request_line(std::string_view line, Message* m) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0 || sp1 > 32) return ParseState::kInvalid;
  std::string_view method = line.substr(0, sp1);
  if (!std::all_of(method.begin(), method.end(), is_method_char)) return ParseState::kInvalid;
  size_t sp2 = line.rfind(' ');
  if (sp2 == sp1) return ParseState::kInvalid;
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty() || target.find(' ') != std::string_view::npos) return ParseState::kInvalid;
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return ParseState::kInvalid;
  int minor = parse_version(line.substr(sp2 + 1));
  if (minor < 0) return ParseState::kInvalid;
  m->kind = Kind::kRequest;
  m->method.assign(method);
  m->target.assign(target);
  m->version_minor = minor;
  return ParseState::kSuccess;
}

ParseState parse_status_line(std::string_view line, Message* m) {
  if (line.size() < 12 || line[8] != ' ') return ParseState::kInvalid;
  int minor = parse_version(line.substr(0, 8));
  if (minor < 0) return ParseState::kInvalid;
  int status = 0;
  auto [ptr, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc() || ptr != line.data() + 12 || status < 100 || status > 999)
    return ParseState::kInvalid;
  if (line.size() > 12 && line[12] != ' ') return ParseState::kInvalid;
  m->kind = Kind::kResponse;
  m->status = status;
  m->version_minor = minor;
  return ParseState::kSuccess;
}

std::string_view skip_empty_lines(std::string_view data) {
  size_t n = data.find_first_not_of("\r\n");
  return n == std::string_view::npos ? std::string_view() : data.substr(n);
}

}  // namespace

bool looks_like_start(std::string_view buf, Kind kind) {
  if (buf.empty()) return false;
  if (kind == Kind::kResponse) {
    size_t n = std::min(buf.size(), kVersionPrefix.size());
    return buf.substr(0, n) == kVersionPrefix.substr(0, n);
  }
  // METHOD SP, with METHOD of uppercase letters (a prefix of one counts).
  for (size_t i = 0; i < buf.size() && i <= 32; ++i) {
    if (buf[i] == ' ') return i > 0;
    if (!is_method_char(buf[i])) return false;
  }
  return buf.size() <= 32;
}

// One pass over the lines: the start line, then each header, until the blank line
// ("\n" or "\r\n" alone) ends the head. Without it the head is incomplete; a bad start
// or header line already seen rejects it at once.
ParseState parse_head(std::string_view buf, Kind kind, const Limits& limits, Message* out,
                      size_t* consumed) {
  *consumed = 0;
  if (buf.empty()) return ParseState::kNeedsMoreData;
  if (!looks_like_start(buf, kind)) return ParseState::kIgnored;
  auto incomplete = [&] { return buf.size() > limits.max_head ? ParseState::kInvalid : ParseState::kNeedsMoreData; };

  size_t nl = buf.find('\n');
  if (nl == std::string_view::npos) return incomplete();
  Message m;
  std::string_view start_line = trim(buf.substr(0, nl));
  auto st = kind == Kind::kRequest ? parse_request_line(start_line, &m) : parse_status_line(start_line, &m);
  if (st != ParseState::kSuccess) return st;

  m.headers.reserve(16, nl < buf.size() ? std::min(buf.size(), limits.max_head) - nl : 0);  // the usual head: two allocations
  size_t end = std::string_view::npos;
  for (size_t pos = nl + 1; pos <= limits.max_head;) {
    size_t e = buf.find('\n', pos);
    if (e == std::string_view::npos) return incomplete();
    std::string_view line = buf.substr(pos, e - pos);
    pos = e + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {  // the blank line
      end = pos;
      break;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      // Obsolete line folding: continues the previous value.
      if (m.headers.empty()) return ParseState::kInvalid;
      m.headers.append_value(m.headers.size() - 1, " ");
      m.headers.append_value(m.headers.size() - 1, trim(line));
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return ParseState::kInvalid;
    if (m.headers.size() >= limits.max_headers) return ParseState::kInvalid;
    m.headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
    char* lname = m.headers.name_data(m.headers.size() - 1);
    for (size_t i = 0; i < colon; ++i)
      if (!(lname[i] = kTcharLower[static_cast<unsigned char>(lname[i])])) return ParseState::kInvalid;
  }
  if (end == std::string_view::npos || end > limits.max_head) return ParseState::kInvalid;
  m.head_bytes = end;
  std::string_view connection = m.header("connection");
  m.connection_close = icontains_token(connection, "close") ||
                       (m.version_minor == 0 && !icontains_token(connection, "keep-alive"));
  *out = std::move(m);
  *consumed = end;
  return ParseState::kSuccess;
}

bool StreamParser::take_line(std::string_view& data) {
  size_t nl = data.find('\n');
  if (nl == std::string_view::npos) {
    buf_.append(data);
    data = {};
    return false;
  }
  buf_.append(data.substr(0, nl));
  data.remove_prefix(nl + 1);
  if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
  return true;
}

void StreamParser::keep_body(std::string_view data) {
  if (cur_.body.size() >= limits_.body_keep) return;
  cur_.body.append(data.substr(0, limits_.body_keep - cur_.body.size()));
}

void StreamParser::finish_message(uint64_t ts) {
  cur_.last_ts = ts;
  done_.push_back(std::move(cur_));
  cur_ = Message{};
  state_ = State::kHead;
}

void StreamParser::resync(uint64_t ts) {
  (void)ts;
  ++invalid_;
  buf_.clear();
  cur_ = Message{};
  interim_ = 0;
  state_ = State::kResync;
}

void StreamParser::on_head_complete() {
  seen_any_ = true;
  cur_.body_bytes = 0;
  std::string_view te = cur_.header("transfer-encoding");
  std::string_view cl = cur_.header("content-length");
  bool chunked = icontains_token(te, "chunked");
  auto fixed_or_invalid = [&]() {
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), n);
    if (ec != std::errc() || ptr != cl.data() + cl.size()) return false;
    remaining_ = n;
    state_ = n == 0 ? State::kHead : State::kBodyFixed;
    return true;
  };

  if (cur_.kind == Kind::kResponse) {
    if (cur_.status >= 100 && cur_.status < 200 && cur_.status != 101) {
      cur_ = Message{};  // interim response (100 Continue): not the answer, counted on it
      ++interim_;
      state_ = State::kHead;
      return;
    }
    cur_.interim = std::exchange(interim_, 0);
    MethodKind method = kOther;
    if (unknown_methods_ > 0) {
      --unknown_methods_;
    } else if (!methods_.empty()) {
      method = methods_.front();
      methods_.pop_front();
    }
    if (cur_.status == 101 || (method == kConnect && cur_.status / 100 == 2)) {
      finish_message(cur_.first_ts);
      state_ = State::kTunnel;  // no longer HTTP/1.x on this connection
      return;
    }
    if (method == kHead || cur_.status == 204 || cur_.status == 304) {
      finish_message(cur_.first_ts);
      return;
    }
  }
  if (chunked) {
    cur_.chunked = true;
    state_ = State::kChunkSize;
  } else if (!cl.empty()) {
    if (!fixed_or_invalid()) return resync(cur_.first_ts);
    if (state_ == State::kHead) finish_message(cur_.first_ts);
  } else if (cur_.kind == Kind::kResponse) {
    state_ = State::kBodyUntilClose;  // no length: the body ends when the connection does
  } else {
    finish_message(cur_.first_ts);  // a request without length has no body
  }
}

void StreamParser::feed(std::string_view data, uint64_t ts) {
  while (!data.empty()) {
    switch (state_) {
      case State::kIgnored:
      case State::kTunnel:
        return;
      case State::kResync:
        // Messages start at syscall boundaries in practice: wait for one that looks right.
        if (!buf_.empty() || !looks_like_start(skip_empty_lines(data), kind_)) return;
        state_ = State::kHead;
        break;
      case State::kHead: {
        size_t consumed = 0;
        ParseState st;
        // Empty lines before a message (RFC 9112 §2.2: a CRLF after a request body,
        // a stray one between pipelined responses) are not part of it.
        if (buf_.empty() && (data = skip_empty_lines(data)).empty()) return;
        if (buf_.empty()) {
          st = parse_head(data, kind_, limits_, &cur_, &consumed);
          if (st == ParseState::kNeedsMoreData) {
            buf_.assign(data);
            cur_.first_ts = ts;
            return;
          }
          if (st == ParseState::kSuccess) {
            cur_.first_ts = ts;
            data.remove_prefix(consumed);
          }
        } else {
          uint64_t first_ts = cur_.first_ts;
          size_t old = buf_.size();
          buf_.append(data.substr(0, limits_.max_head + 4 - std::min(old, limits_.max_head + 4)));
          st = parse_head(buf_, kind_, limits_, &cur_, &consumed);
          if (st == ParseState::kNeedsMoreData) {
            cur_.first_ts = first_ts;
            return;
          }
          if (st == ParseState::kSuccess) {
            cur_.first_ts = first_ts;
            data.remove_prefix(consumed - old);
            buf_.clear();
          }
        }
        if (st == ParseState::kIgnored && !seen_any_) {
          state_ = State::kIgnored;
          buf_.clear();
          return;
        }
        if (st != ParseState::kSuccess) {
          resync(ts);
          return;
        }
        cur_.last_ts = ts;
        on_head_complete();
        break;
      }
      case State::kBodyFixed:
      case State::kChunkData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
        keep_body(data.substr(0, n));
        cur_.body_bytes += n;
        remaining_ -= n;
        data.remove_prefix(n);
        if (remaining_ == 0) {
          if (state_ == State::kBodyFixed) finish_message(ts);
          else state_ = State::kChunkDataEnd;
        }
        break;
      }
      case State::kChunkSize: {
        if (!take_line(data)) {
          if (buf_.size() > 1024) resync(ts);
          return;
        }
        std::string_view line = buf_;
        line = line.substr(0, line.find(';'));  // chunk extensions
        line = trim(line);
        uint64_t size = 0;
        auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
        if (line.empty() || ec != std::errc() || ptr != line.data() + line.size()) {
          resync(ts);
          return;
        }
        buf_.clear();
        remaining_ = size;
        state_ = size == 0 ? State::kTrailers : State::kChunkData;
        break;
      }
      case State::kChunkDataEnd:
        if (!take_line(data)) {
          if (buf_.size() > 2) resync(ts);
          return;
        }
        if (!buf_.empty()) {
          resync(ts);
          return;
        }
        state_ = State::kChunkSize;
        break;
      case State::kTrailers:
        if (!take_line(data)) {
          if (buf_.size() > limits_.max_head) resync(ts);
          return;
        }
        if (buf_.empty()) {
          finish_message(ts);
        } else {
          buf_.clear();  // trailer fields are not reported
        }
        break;
      case State::kBodyUntilClose:
        keep_body(data);
        cur_.body_bytes += data.size();
        cur_.last_ts = ts;
        return;
    }
  }
}

void StreamParser::gap(uint64_t n, uint64_t ts) {
  switch (state_) {
    case State::kBodyFixed:
    case State::kChunkData:
      cur_.truncated = true;
      if (n <= remaining_) {
        remaining_ -= n;
        cur_.body_bytes += n;
        if (remaining_ == 0) {
          if (state_ == State::kBodyFixed) finish_message(ts);
          else state_ = State::kChunkDataEnd;
        }
        return;
      }
      // The gap runs past this body: the next message's start is lost.
      cur_.body_bytes += remaining_;
      finish_message(ts);
      resync(ts);
      return;
    case State::kBodyUntilClose:
      cur_.truncated = true;
      cur_.body_bytes += n;
      return;
    case State::kChunkSize:
    case State::kChunkDataEnd:
    case State::kTrailers:
      cur_.truncated = true;
      finish_message(ts);
      resync(ts);
      return;
    case State::kHead:
      resync(ts);
      return;
    case State::kResync:
      buf_.clear();
      return;
    case State::kIgnored:
    case State::kTunnel:
      return;
  }
}

void StreamParser::end(uint64_t ts) {
  if (state_ == State::kBodyUntilClose) finish_message(ts);
}

}  // namespace vigil::http1
