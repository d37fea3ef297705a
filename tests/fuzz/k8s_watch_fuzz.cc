// libFuzzer: what the Kubernetes API server (or anything that impersonates it,
// or a proxy) answers: a PodList page when the input starts with '{' and has no
// newline, else watch-stream lines. Decoded as the watcher thread decodes them
// (decode_list_page, decode_watch_line), then through the cache. Nothing may
// throw: an exception there ended vigild (security review F16).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/k8s/pods.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static vigil::k8s::PodCache cache({"app", "version"}, 64);
  std::string_view body(reinterpret_cast<const char*>(data), size);
  if (!body.empty() && body[0] == '{' && body.find('\n') == std::string_view::npos) {
    auto page = vigil::k8s::decode_list_page(body);
    if (page.ok) cache.replace(std::move(page.pods));
  } else {
    size_t start = 0;
    while (start < body.size()) {
      size_t nl = body.find('\n', start);
      std::string_view line = body.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      start = nl == std::string_view::npos ? body.size() : nl + 1;
      if (line.empty()) continue;
      auto w = vigil::k8s::decode_watch_line(line);
      if (w.kind == vigil::k8s::WatchLine::kInvalid || w.kind == vigil::k8s::WatchLine::kError) break;
      if (!w.pod) continue;
      if (w.kind == vigil::k8s::WatchLine::kDeleted) cache.remove(w.pod->uid);
      else if (w.kind != vigil::k8s::WatchLine::kBookmark) cache.upsert(std::move(*w.pod));
    }
  }
  if (cache.size() > 64) __builtin_trap();
  (void)cache.lookup("0b8f7c3e-1111-2222-3333-444455556666", "abc");
  (void)cache.uids_where([](const vigil::k8s::Pod& p) { return p.labels.count("app") > 0; });
  return 0;
}
