#include "collectors/protocols/http2/tracker.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

namespace vigil::http2 {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr uint8_t kData = 0x0, kHeaders = 0x1, kRstStream = 0x3, kContinuation = 0x9;
constexpr uint8_t kEndStream = 0x1, kEndHeaders = 0x4, kPadded = 0x8, kPriority = 0x20;
constexpr uint32_t kMaxFrame = 1u << 20;  // larger than any SETTINGS_MAX_FRAME_SIZE we accept
constexpr size_t kMaxStreams = 1024;      // open streams kept per connection

// Adds the field with its name lower-cased in place.
void add_lower(protocols::Headers& h, std::string_view name, std::string_view value) {
  h.emplace_back(name, value);
  char* n = h.name_data(h.size() - 1);
  for (size_t i = 0; i < name.size(); ++i) n[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(n[i])));
}

}  // namespace

Tracker::Direction::Direction(Tracker& tracker, bool client_side)
    : t(tracker), from_client(client_side), preface_left(client_side ? kPreface.size() : 0) {
  if (nghttp2_hd_inflate_new(&inflater) != 0) inflater = nullptr;
}

Tracker::Direction::~Direction() {
  if (inflater) nghttp2_hd_inflate_del(inflater);
}

Tracker::Tracker(bool client_role, protocols::Limits limits)
    : client_(client_role), limits_(limits), c2s_(new Direction(*this, true)), s2c_(new Direction(*this, false)) {}

Tracker::~Tracker() = default;

void Tracker::on_data(bool egress, uint64_t offset, uint64_t length, std::string_view captured, uint64_t ts) {
  Direction& d = egress == client_ ? *c2s_ : *s2c_;
  d.reasm.add(offset, length, captured, ts, d);
}

void Tracker::tick(uint64_t now, uint64_t hold_ns) {
  uint64_t before = now > hold_ns ? now - hold_ns : 0;
  c2s_->reasm.flush_before(before, *c2s_);
  s2c_->reasm.flush_before(before, *s2c_);
}

void Tracker::on_close(uint64_t ts) {
  c2s_->reasm.flush(*c2s_);
  s2c_->reasm.flush(*s2c_);
  for (auto& [sid, s] : streams_) {
    (void)sid;
    if (s.partial) ++stats_.partial_streams;
    else if (s.request_seen) ++stats_.unpaired_requests;
  }
  streams_.clear();
  (void)ts;
}

Tracker::Stream& Tracker::stream(uint32_t sid) {
  if (streams_.size() >= kMaxStreams && !streams_.count(sid)) {
    // Streams that never finish (RST lost, capture gaps): forget the oldest.
    auto oldest = streams_.begin();
    if (oldest->second.request_seen) ++stats_.unpaired_requests;
    streams_.erase(oldest);
  }
  return streams_[sid];
}

protocols::Message& Tracker::message(uint32_t sid, bool from_client) {
  Stream& s = stream(sid);
  return from_client ? s.request : s.response;
}

void Tracker::finish(uint32_t sid, uint64_t ts) {
  auto it = streams_.find(sid);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (s.partial || !s.request_seen || !s.response_seen) {
    if (s.partial) ++stats_.partial_streams;
    else if (!s.request_seen) ++stats_.unpaired_responses;
    else ++stats_.unpaired_requests;
  } else {
    if (!s.response.last_ts) s.response.last_ts = ts;
    ready_.push_back({std::move(s.request), std::move(s.response)});
    ++stats_.exchanges;
  }
  streams_.erase(it);
}

void Tracker::finish_if_done(uint32_t sid, bool from_client, uint64_t ts) {
  if (!from_client) return finish(sid, ts);
  if (auto it = streams_.find(sid); it != streams_.end()) it->second.request.last_ts = ts;
}

void Tracker::Direction::data(std::string_view b, uint64_t ts) {
  if (broken) return;
  buf.append(b);
  // The server's header blocks only make sense once the client's preface
  // proved the connection was seen from its start.
  if (!from_client && t.c2s_->preface_left > 0) {
    if (t.c2s_->broken || buf.size() > kMaxFrame) {
      broken = true;
      buf.clear();
    }
    return;
  }
  parse(ts);
  if (from_client && preface_left == 0 && !t.s2c_->buf.empty() && !t.s2c_->broken) t.s2c_->parse(ts);
}

void Tracker::Direction::gap(uint64_t n, uint64_t ts) {
  t.stats_.gap_bytes += n;
  if (broken) return;
  parse(ts);  // whatever complete frames precede the gap
  // Inside a DATA payload with nothing else buffered: skip it, the message is truncated.
  if (buf.empty() && data_left >= n) {
    data_left -= n;
    protocols::Message& m = t.message(data_sid, from_client);
    m.body_bytes += n;
    m.truncated = true;
    if (data_left == 0 && data_end) t.finish_if_done(data_sid, from_client, ts);
    return;
  }
  broken = true;  // a frame header or header block was lost: HPACK state with it
  buf.clear();
}

void Tracker::Direction::parse(uint64_t ts) {
  size_t pos = 0;
  if (preface_left) {
    size_t have = std::min(preface_left, buf.size());
    size_t at = kPreface.size() - preface_left;
    if (buf.compare(0, have, kPreface.substr(at, have)) != 0) {
      // Joined mid-connection (or not HTTP/2): no HPACK context in either direction.
      broken = t.s2c_->broken = true;
      buf.clear();
      t.s2c_->buf.clear();
      ++t.stats_.partial_streams;
      return;
    }
    preface_left -= have;
    pos = have;
  }
  while (!broken) {
    if (data_left) {  // stream a DATA payload without buffering it
      size_t take = static_cast<size_t>(std::min<uint64_t>(data_left, buf.size() - pos));
      if (take == 0) break;
      protocols::Message& m = t.message(data_sid, from_client);
      if (m.body.size() < t.limits_.body_keep)
        m.body.append(buf, pos, std::min(take, t.limits_.body_keep - m.body.size()));
      m.body_bytes += take;
      m.last_ts = ts;
      data_left -= take;
      pos += take;
      if (data_left == 0 && data_end) t.finish_if_done(data_sid, from_client, ts);
      continue;
    }
    if (buf.size() - pos < 9) break;
    auto u8 = [&](size_t i) { return static_cast<uint8_t>(buf[pos + i]); };
    uint32_t len = (u8(0) << 16) | (u8(1) << 8) | u8(2);
    uint8_t type = u8(3), flags = u8(4);
    uint32_t sid = ((u8(5) & 0x7f) << 24) | (u8(6) << 16) | (u8(7) << 8) | u8(8);
    if (len > kMaxFrame) {
      broken = true;
      break;
    }
    if (type == kData) {
      pos += 9;
      if (sid == 0) {
        broken = true;
        break;
      }
      data_sid = sid;
      data_left = len;
      data_end = flags & kEndStream;
      protocols::Message& m = t.message(sid, from_client);
      if (!m.first_ts) m.first_ts = ts;
      if (len == 0 && data_end) t.finish_if_done(sid, from_client, ts);
      continue;
    }
    if (buf.size() - pos < 9 + len) break;  // wait for the whole frame
    frame(type, flags, sid, std::string_view(buf).substr(pos + 9, len), ts);
    pos += 9 + len;
  }
  buf.erase(0, std::min(pos, buf.size()));
}

void Tracker::Direction::frame(uint8_t type, uint8_t flags, uint32_t sid, std::string_view payload, uint64_t ts) {
  // A header block is HEADERS then CONTINUATION frames of its stream and nothing
  // else (RFC 9113 §6.10): anything between leaves the decoder mid-field.
  if (block_open && type != kContinuation) return void(broken = true);
  if (type == kRstStream) {
    auto it = t.streams_.find(sid);
    if (it != t.streams_.end()) {
      if (it->second.request_seen) ++t.stats_.unpaired_requests;
      t.streams_.erase(it);
    }
    return;
  }
  if (type != kHeaders && type != kContinuation) return;  // SETTINGS, PING, WINDOW_UPDATE, ...
  std::string_view fragment = payload;
  if (type == kHeaders) {
    size_t skip = 0, pad = 0;
    if (flags & kPadded) {
      if (payload.empty()) return void(broken = true);
      pad = static_cast<uint8_t>(payload[0]);
      skip = 1;
    }
    if (flags & kPriority) skip += 5;
    if (skip + pad > payload.size()) return void(broken = true);
    fragment = payload.substr(skip, payload.size() - skip - pad);
    block_open = true;
    block_sid = sid;
    block_end_stream = flags & kEndStream;
    block_bytes = 0;
    block_decoded = 0;
    Stream& s = t.stream(sid);
    protocols::Message& m = from_client ? s.request : s.response;
    if (!m.first_ts) m.first_ts = ts;
    block_trailers = from_client ? s.request_seen : s.response_seen;
  } else if (!block_open || sid != block_sid) {
    return void(broken = true);
  }
  block_bytes += 9 + payload.size();
  bool last = flags & kEndHeaders;
  if (!inflate(fragment, last)) {
    broken = true;  // the decoder's table is now unknown
    block_open = false;
    if (auto it = t.streams_.find(block_sid); it != t.streams_.end()) it->second.partial = true;
    return;
  }
  if (last) headers_done(block_sid, block_end_stream, ts);
}

bool Tracker::Direction::inflate(std::string_view fragment, bool last) {
  if (!inflater) return false;
  Stream& s = t.stream(block_sid);
  protocols::Message& m = from_client ? s.request : s.response;
  const auto* in = reinterpret_cast<const uint8_t*>(fragment.data());
  size_t left = fragment.size();
  // Fragment by fragment: nghttp2 keeps a field cut between frames, so the block
  // is never buffered whole (CONTINUATION frames could make it any size).
  for (;;) {
    nghttp2_nv nv;
    int inflate_flags = 0;
    ssize_t rv = nghttp2_hd_inflate_hd2(inflater, &nv, &inflate_flags, in, left, last ? 1 : 0);
    if (rv < 0) return false;
    in += rv;
    left -= static_cast<size_t>(rv);
    if (inflate_flags & NGHTTP2_HD_INFLATE_EMIT) {
      std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
      std::string_view value(reinterpret_cast<const char*>(nv.value), nv.valuelen);
      // Decoded bytes, pseudo-headers included, count against the head limit: one
      // indexed byte can stand for a 4 KB table entry (an HPACK bomb). Past the
      // limit the stream is partial; decoding goes on, to keep the table in step.
      block_decoded += name.size() + value.size();
      if (block_decoded > t.limits_.max_head) {
        s.partial = true;
      } else if (name == ":method") {
        m.method = value;
      } else if (name == ":path") {
        m.target = value;
      } else if (name == ":status") {
        m.status = std::atoi(std::string(value).c_str());
      } else if (name == ":authority") {
        if (m.headers.size() < t.limits_.max_headers) m.headers.emplace_back("host", value);
      } else if (!name.starts_with(":") && m.headers.size() < t.limits_.max_headers) {
        add_lower(m.headers, name, value);
      }
    }
    if (inflate_flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater);
      return true;
    }
    if (!(inflate_flags & NGHTTP2_HD_INFLATE_EMIT)) {
      if (left == 0 && !last) return true;  // the rest is in the next frame
      if (rv == 0) return false;            // no progress: not a valid block
    }
  }
}

void Tracker::Direction::headers_done(uint32_t sid, bool end_stream, uint64_t ts) {
  block_open = false;
  Stream& s = t.stream(sid);
  protocols::Message& m = from_client ? s.request : s.response;
  m.head_bytes += block_bytes;
  m.version_major = 2;
  m.version_minor = 0;
  m.kind = from_client ? protocols::Kind::kRequest : protocols::Kind::kResponse;
  if (!block_trailers) (from_client ? s.request_seen : s.response_seen) = true;
  m.last_ts = ts;
  if (end_stream) t.finish_if_done(sid, from_client, ts);
}

}  // namespace vigil::http2
