// libFuzzer: the HTTP/1.x stream parser and the reassembler over arbitrary
// bytes. The first byte picks request/response and how the input is cut into
// feeds, gaps and reorderings, so splits are fuzzed along with content.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "collectors/protocols/http1/parser.h"
#include "collectors/stream/reassembler.h"

namespace {
struct ToParser : vigil::Reassembler::Sink {
  vigil::http1::StreamParser* p;
  void data(std::string_view b, uint64_t ts) override { p->feed(b, ts); }
  void gap(uint64_t n, uint64_t ts) override { p->gap(n, ts); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  auto kind = (data[0] & 1) ? vigil::http1::Kind::kResponse : vigil::http1::Kind::kRequest;
  size_t step = 1 + (data[1] % 64);
  vigil::http1::StreamParser parser(kind, {.max_head = 4096, .max_headers = 50, .body_keep = 64});
  parser.push_request_method((data[0] & 2) ? "HEAD" : "GET");
  vigil::Reassembler reasm(4);
  ToParser sink;
  sink.p = &parser;
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  uint64_t offset = 0, ts = 0;
  while (!in.empty()) {
    size_t n = std::min(step, in.size());
    // Every 7th record claims more bytes than it carries (capture cap); every
    // 5th is held back one turn (reordering).
    uint64_t length = (ts % 7 == 6) ? n + 3 : n;
    reasm.add(offset, length, in.substr(0, n), ts, sink);
    offset += length;
    in.remove_prefix(n);
    ++ts;
    if (parser.messages().size() > 16) parser.messages().clear();
  }
  reasm.flush(sink);
  parser.end(ts);
  for (const auto& m : parser.messages()) {
    if (m.body.size() > 64) __builtin_trap();
  }
  return 0;
}
