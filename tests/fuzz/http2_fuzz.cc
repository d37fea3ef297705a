// libFuzzer: the HTTP/2 tracker (frames, HPACK through libnghttp2, stream
// pairing) over arbitrary bytes in both directions. Inputs that start with the
// connection preface reach the frame parser; the first bytes choose the role,
// the record size and which records claim more bytes than they carry.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "collectors/protocols/http2/tracker.h"

namespace {

// What a message keeps of its header blocks stays within the limits, however
// the fields were encoded (security review F6: an indexed byte can stand for a
// 4 KB table entry).
void check_limits(const std::vector<vigil::protocols::Exchange>& xs) {
  for (const auto& x : xs)
    for (const auto* m : {&x.request, &x.response}) {
      if (m->body.size() > 64 || m->headers.size() > 50) __builtin_trap();
      size_t bytes = m->method.size() + m->target.size();
      for (const auto& [k, v] : m->headers) bytes += k.size() + v.size();
      if (bytes > 4096) __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  bool client = data[0] & 1;
  size_t step = 1 + (data[1] % 97);
  uint8_t capped = data[2];
  vigil::http2::Tracker t(client, {.max_head = 4096, .max_headers = 50, .body_keep = 64});
  // The client direction opens with the preface when the fuzzer asks for it.
  std::string c2s = (data[0] & 2) ? std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") : std::string();
  std::string_view in(reinterpret_cast<const char*>(data + 3), size - 3);
  uint64_t off[2] = {0, 0}, ts = 0;
  if (!c2s.empty()) {
    t.on_data(client, 0, c2s.size(), c2s, ts++);
    off[client ? 1 : 0] = c2s.size();
  }
  while (!in.empty()) {
    size_t n = std::min(step, in.size());
    bool egress = (ts + data[0]) % 3 != 0;
    uint64_t length = ((ts ^ capped) % 11 == 0) ? n + 5 : n;
    uint64_t& o = off[egress ? 1 : 0];
    t.on_data(egress, o, length, in.substr(0, n), ts);
    o += length;
    in.remove_prefix(n);
    ++ts;
    if (t.exchanges().size() > 16) {
      check_limits(t.exchanges());
      t.exchanges().clear();
    }
  }
  t.tick(ts + 1'000'000'000ull, 0);
  t.on_close(ts);
  check_limits(t.exchanges());
  return 0;
}
