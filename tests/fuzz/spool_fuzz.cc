// libFuzzer: the disk spool (agent/sinks/spool.cc) as a crash, a full disk, a bad
// sector or anyone who can write data_dir could leave it. The input's first part
// is records, written by the spool itself (so the checksums are right and the
// reader gets past them); the rest are damages to its files: (file, offset,
// bytes) overwrites, truncations, a cursor. Then: reopen, peek/ack until empty,
// append, peek again. No crash, no hang, and the drain never grows the spool.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "agent/sinks/spool.h"
#include "base/log.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    vigil::log::set_level(vigil::log::Level::kError);  // a warning per damaged record would be most of the time
    char tmpl[] = "/tmp/vigil-spool-fuzz-XXXXXX";
    return std::string(mkdtemp(tmpl));
  }();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove(e.path(), ec);
  FuzzedDataProvider fdp(data, size);
  vigil::sinks::SpoolOptions o;
  o.max_bytes = 64u << 10;  // small: segments seal, compaction and shedding run
  o.segment_bytes = 4096;
  {
    auto sp = vigil::sinks::Spool::open(dir, o);
    if (!sp) return 0;
    std::vector<vigil::sinks::Record> batch;
    for (int n = fdp.ConsumeIntegralInRange<int>(0, 40), i = 0; i < n; ++i) {
      vigil::sinks::Record r;
      r.seq = static_cast<uint64_t>(i + 1);
      r.kind = fdp.ConsumeIntegralInRange<uint8_t>(0, 9);
      r.shed = fdp.ConsumeIntegralInRange<uint8_t>(0, 3);
      r.line = fdp.ConsumeRandomLengthString(600);
      batch.push_back(std::move(r));
    }
    (void)(*sp)->append(batch);
    if (fdp.ConsumeBool()) (*sp)->ack(fdp.ConsumeIntegralInRange<size_t>(0, 5));
    (void)(*sp)->sync(0, true);
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  while (!files.empty() && fdp.remaining_bytes() > 3) {
    const fs::path& f = files[fdp.ConsumeIntegralInRange<size_t>(0, files.size() - 1)];
    uint8_t what = fdp.ConsumeIntegralInRange<uint8_t>(0, 2);
    int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;
    off_t at = fdp.ConsumeIntegralInRange<off_t>(0, 8192);
    if (what == 0) {
      std::string bytes = fdp.ConsumeRandomLengthString(32);
      (void)!::pwrite(fd, bytes.data(), bytes.size(), at);
    } else if (what == 1) {
      (void)!::ftruncate(fd, at);
    } else {
      std::string cursor = fdp.ConsumeRandomLengthString(40);
      int c = ::open((dir + "/cursor").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (c >= 0) {
        (void)!::write(c, cursor.data(), cursor.size());
        ::close(c);
      }
    }
    ::close(fd);
  }
  auto sp = vigil::sinks::Spool::open(dir, o);
  if (!sp) return 0;
  auto& s = **sp;
  uint64_t before = s.records();
  for (int round = 0; round < 10000; ++round) {
    const auto& got = s.peek(7, 1500);
    if (got.empty()) break;
    s.ack(got.size());
    if (s.records() > before) __builtin_trap();
    before = s.records();
  }
  std::vector<vigil::sinks::Record> more(3);
  for (size_t i = 0; i < more.size(); ++i) more[i].line = std::string(100 + i * 3000, 'x');
  (void)s.append(more);
  for (int round = 0; round < 100 && !s.peek(2, 100000).empty(); ++round) s.ack(1);
  (void)s.sync(0, true);
  return 0;
}
