// HTTP/2 on one connection (h2 over TLS, or h2c): reassembles both
// directions, parses frames, decodes header blocks with libnghttp2's HPACK
// inflater (one per direction, as the protocol keeps one table per direction),
// and pairs each stream's request with its response and trailers.
//
// A connection joined mid-stream has an unknown HPACK dynamic table: its header
// blocks cannot be trusted, so its streams are counted as partial, never
// reported with guessed headers. A gap that cuts a frame header or a header
// block does the same from that point; a gap inside a DATA payload only marks
// that message truncated.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/protocols/common/tracker.h"
#include "collectors/stream/reassembler.h"

struct nghttp2_hd_inflater;

namespace vigil::http2 {

class Tracker : public protocols::ExchangeTracker {
 public:
  // client: the observed process sends the requests (egress = client to server).
  Tracker(bool client_role, protocols::Limits limits = {});
  ~Tracker() override;
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;

  void on_data(bool egress, uint64_t offset, uint64_t length, std::string_view captured, uint64_t ts) override;
  void on_close(uint64_t ts) override;
  void tick(uint64_t now, uint64_t hold_ns = 50'000'000) override;
  std::vector<protocols::Exchange>& exchanges() override { return ready_; }
  const protocols::TrackerStats& stats() const override { return stats_; }

 private:
  struct Stream {
    protocols::Message request, response;
    bool request_seen = false;   // its HEADERS were decoded
    bool response_seen = false;
    bool partial = false;
  };
  struct Direction : Reassembler::Sink {
    Direction(Tracker& t, bool from_client);
    ~Direction() override;
    void data(std::string_view b, uint64_t ts) override;
    void gap(uint64_t n, uint64_t ts) override;
    void parse(uint64_t ts);
    void frame(uint8_t type, uint8_t flags, uint32_t sid, std::string_view payload, uint64_t ts);
    // Decodes one fragment of the open header block into its message; false: the
    // decoder failed (its table is unknown from here on).
    bool inflate(std::string_view fragment, bool last);
    void headers_done(uint32_t sid, bool end_stream, uint64_t ts);

    Tracker& t;
    bool from_client;
    Reassembler reasm;
    nghttp2_hd_inflater* inflater = nullptr;
    std::string buf;            // bytes of the frame being assembled
    size_t preface_left = 0;    // client direction: connection preface still expected
    bool broken = false;        // lost sync: frames and header blocks no longer trusted
    uint64_t data_left = 0;     // payload bytes of the DATA frame being streamed
    uint32_t data_sid = 0;
    bool data_end = false;
    bool block_open = false;    // a header block began and its END_HEADERS is still to come
    uint32_t block_sid = 0;
    bool block_end_stream = false;
    bool block_trailers = false;  // the block is trailers (the message's headers came before)
    uint64_t block_bytes = 0;     // on the wire, frame headers included
    uint64_t block_decoded = 0;   // decoded name and value bytes
  };
  Stream& stream(uint32_t sid);
  void finish(uint32_t sid, uint64_t ts);
  // A side ended stream `sid`: the server's end completes the exchange.
  void finish_if_done(uint32_t sid, bool from_client, uint64_t ts);
  protocols::Message& message(uint32_t sid, bool from_client);

  bool client_;
  protocols::Limits limits_;
  std::unique_ptr<Direction> c2s_, s2c_;
  std::map<uint32_t, Stream> streams_;
  std::vector<protocols::Exchange> ready_;
  protocols::TrackerStats stats_;
};

}  // namespace vigil::http2
