// The on-disk spool of a network sink (data_dir/spool/<sink>): records in
// segment files, each with a checksum, read back in order and removed only after the
// sink's receiver acknowledged them; replayed after a restart or SIGKILL.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "agent/sinks/record.h"
#include "base/fd.h"
#include "base/result.h"

namespace vigil::sinks {

struct SpoolOptions {
  uint64_t max_bytes = 256ull << 20;          // spool_max_mb
  uint64_t segment_bytes = 4ull << 20;        // a segment is sealed at this size
  uint64_t fsync_interval_ns = 1'000'000'000;  // data and the ack cursor reach the disk this often
};

class Spool {
 public:
  // Opens or creates `dir`; a torn record at the tail (a crash mid-write) is cut off
  // and counted as corrupt. Never fails on bad content, only on the directory itself.
  static Result<std::unique_ptr<Spool>> open(const std::string& dir, SpoolOptions o);
  ~Spool();

  // Appends a batch (taking its records' lines). When the spool is full, shed by class
  // (record.h): telemetry is refused first; a record of a higher class first makes
  // room by compacting away older records of lower classes, counted per class.
  Status append(std::vector<Record>& batch);

  // The oldest unacknowledged records, at most `max_records`/`max_bytes` (at least
  // one). The same records again until ack() (a failed delivery is retried).
  const std::vector<Record>& peek(size_t max_records, size_t max_bytes);
  // The first `n` peeked records were delivered (or given up on): they leave the spool.
  void ack(size_t n);
  // Forces data and the cursor to disk when the interval passed (or `force`).
  Status sync(uint64_t now_ns, bool force = false);

  uint64_t bytes() const { return bytes_; }  // unacknowledged bytes on disk
  uint64_t records() const { return records_; }
  uint64_t corrupt() const { return corrupt_; }  // records skipped as unreadable
  const std::array<uint64_t, kShedClasses>& shed() const { return shed_; }  // refused, by class
  const std::string& dir() const { return dir_; }

 private:
  struct Pos {
    uint64_t seg = 0, off = 0;
  };
  Spool(std::string dir, SpoolOptions o) : dir_(std::move(dir)), o_(o) {}
  std::string seg_path(uint64_t id) const;
  Status open_active(uint64_t id);
  Status roll();
  // Reads the record at `p` of segment `fd` (size `size`); advances `p` past it or, on a
  // bad record, to the next offset that starts a valid one. false at the end.
  bool read_one(int fd, uint64_t size, uint64_t& off, Record& out, bool count_corrupt);
  void scan_existing();
  bool compact(uint8_t below);  // drops sealed records of classes < `below`; true if bytes went down
  void drop_peeked() {
    peeked_.clear();
    peeked_end_.clear();
    read_ = cursor_;
  }

  std::string dir_;
  SpoolOptions o_;
  std::vector<uint64_t> segs_;  // ids, oldest first; the last is the active one
  Fd active_;
  std::vector<std::pair<uint64_t, Fd>> unsynced_;  // sealed segments written since the last sync
  uint64_t active_size_ = 0;
  Pos cursor_, read_;  // first unacknowledged record; where the next peek continues
  bool cursor_dirty_ = false, data_dirty_ = false;
  uint64_t last_sync_ns_ = 0;
  uint64_t bytes_ = 0, records_ = 0, corrupt_ = 0;
  std::array<uint64_t, kShedClasses> shed_{};
  std::array<uint64_t, kShedClasses> class_bytes_{};  // unacknowledged bytes per class
  std::vector<Record> peeked_;
  std::vector<Pos> peeked_end_;
  std::string buf_;
  struct Cached {
    Pos start, end;
    Record record;
  };
  static constexpr size_t kCacheBytes = 8u << 20;
  void cache(Cached c);
  std::deque<Cached> cache_;  // the newest records, as written
  size_t cache_bytes_ = 0;
};

}  // namespace vigil::sinks
