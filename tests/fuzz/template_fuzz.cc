// libFuzzer: path templating takes any bytes a client puts in a request line.
// Templates must never crash, must keep the segment count, and a learnt trie
// must stay bounded and re-template what it produced.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/apimap/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static vigil::apimap::Templater t;
  static size_t calls = 0;
  if (++calls % 50000 == 0) t = vigil::apimap::Templater{};
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // Several paths per input: split on newlines, so the trie sees siblings.
  size_t start = 0;
  while (start <= in.size()) {
    size_t nl = in.find('\n', start);
    if (nl == std::string_view::npos) nl = in.size();
    std::string path = "/" + std::string(in.substr(start, nl - start));
    auto r = t.apply("s", path, (path.size() & 1) == 0);
    std::vector<std::string_view> a, b;
    vigil::apimap::split_path(path, a);
    vigil::apimap::split_path(r.path, b);
    if (a.size() != b.size()) __builtin_trap();
    std::string again = t.retemplate("s", r.path);
    vigil::apimap::split_path(again, b);
    if (a.size() != b.size()) __builtin_trap();
    (void)vigil::apimap::classify_segment(in.substr(start, nl - start));
    (void)vigil::apimap::param_name_for(in.substr(start, nl - start));
    start = nl + 1;
  }
  if (t.node_count() > 10'000'000) __builtin_trap();
  return 0;
}
