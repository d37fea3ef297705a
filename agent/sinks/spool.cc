#include "agent/sinks/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "base/file.h"
#include "base/log.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace vigil::sinks {
namespace {

constexpr uint32_t kMagic = 0x31505356;  // "VSP1"
// magic, body length, checksum of the body: XXH3-64 (libxxhash), not zlib's crc32,
// which was a fifth of the spool's time (bench/sinks_bench.cc).
constexpr size_t kHeader = 16;
constexpr size_t kMeta = 24;             // version, kind, severity, shed, reserved, seq, time
constexpr uint32_t kMaxBody = 32u << 20;

uint32_t get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void put32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }

size_t record_size(const Record& r) { return kHeader + kMeta + r.line.size(); }

void encode(std::string& out, const Record& r) {
  size_t at = out.size();
  put32(out, kMagic);
  put32(out, static_cast<uint32_t>(kMeta + r.line.size()));
  put64(out, 0);  // checksum, below
  size_t body = out.size();
  out.push_back(1);
  out.push_back(static_cast<char>(r.kind));
  out.push_back(static_cast<char>(r.severity));
  out.push_back(static_cast<char>(r.shed));
  put32(out, 0);
  put64(out, r.seq);
  put64(out, r.time_ns);
  out.append(r.line);
  uint64_t sum = XXH3_64bits(out.data() + body, out.size() - body);
  std::memcpy(out.data() + at + 8, &sum, 8);
}

// The record at data[off..]: its size, or 0 when it is not a valid one.
size_t decode(std::string_view data, size_t off, Record* out) {
  if (off + kHeader + kMeta > data.size()) return 0;
  const char* p = data.data() + off;
  uint32_t len = get32(p + 4);
  if (get32(p) != kMagic || len < kMeta || len > kMaxBody || off + kHeader + len > data.size()) return 0;
  if (XXH3_64bits(p + kHeader, len) != get64(p + 8) || p[kHeader] != 1) return 0;
  if (out) {
    out->kind = static_cast<uint8_t>(p[kHeader + 1]);
    out->severity = static_cast<uint8_t>(p[kHeader + 2]);
    out->shed = std::min<uint8_t>(static_cast<uint8_t>(p[kHeader + 3]), kShedKeep);
    out->seq = get64(p + kHeader + 8);
    out->time_ns = get64(p + kHeader + 16);
    out->line.assign(p + kHeader + kMeta, len - kMeta);
  }
  return kHeader + len;
}

// Where the next valid record starts after a bad one at `off` (data.size() if none).
size_t resync(std::string_view data, size_t off) {
  const char magic[4] = {'V', 'S', 'P', '1'};
  for (size_t at = off + 1; at + kHeader <= data.size(); ++at) {
    const void* hit = memmem(data.data() + at, data.size() - at, magic, 4);
    if (!hit) break;
    at = static_cast<size_t>(static_cast<const char*>(hit) - data.data());
    if (decode(data, at, nullptr)) return at;
  }
  return data.size();
}

uint64_t file_size(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

Status write_all(int fd, std::string_view data, const std::string& what) {
  int err = 0;
  write_some(fd, data, err);
  return err ? os_error("write " + what, err) : Status{};
}

}  // namespace

std::string Spool::seg_path(uint64_t id) const { return fmt::format("{}/{:016}.seg", dir_, id); }

Result<std::unique_ptr<Spool>> Spool::open(const std::string& dir, SpoolOptions o) {
  if (auto made = ensure_private_dir(dir); !made) return Error{fmt::format("spool directory: {}", made.error().message)};
  std::error_code ec;
  std::unique_ptr<Spool> s(new Spool(dir, o));
  s->o_.segment_bytes = std::clamp<uint64_t>(o.max_bytes / 8, 64u << 10, o.segment_bytes);
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.size() == 20 && name.ends_with(".seg") && std::all_of(name.begin(), name.end() - 4, ::isdigit))
      s->segs_.push_back(std::stoull(name.substr(0, 16)));
  }
  if (ec) return Error{fmt::format("list spool directory {}: {}", dir, ec.message())};
  std::sort(s->segs_.begin(), s->segs_.end());
  // The cursor: the first unacknowledged record ("segment offset").
  if (auto c = read_file(dir + "/cursor"); c) {
    unsigned long long seg = 0, off = 0;
    if (std::sscanf(c->c_str(), "%llu %llu", &seg, &off) == 2) s->cursor_ = {seg, off};
  }
  while (!s->segs_.empty() && s->segs_.front() < s->cursor_.seg) {  // acknowledged, not yet removed
    ::unlink(s->seg_path(s->segs_.front()).c_str());
    s->segs_.erase(s->segs_.begin());
  }
  if (s->segs_.empty() || s->segs_.front() != s->cursor_.seg) s->cursor_ = {s->segs_.empty() ? 1 : s->segs_.front(), 0};
  s->scan_existing();
  uint64_t active = s->segs_.empty() ? s->cursor_.seg : s->segs_.back();
  if (!s->segs_.empty() && file_size(s->seg_path(active)) >= s->o_.segment_bytes) ++active;
  if (auto st = s->open_active(active); !st) return st.error();
  s->read_ = s->cursor_;
  return s;
}

Spool::~Spool() { (void)sync(0, true); }

// Counts what is unacknowledged; a torn tail of the last segment (SIGKILL mid-write)
// is cut off, corrupt records in between are counted (and skipped when read).
void Spool::scan_existing() {
  for (size_t i = 0; i < segs_.size(); ++i) {
    std::string path = seg_path(segs_[i]);
    uint64_t start = segs_[i] == cursor_.seg ? cursor_.off : 0;
    auto data = read_range(path, start, file_size(path) - std::min(start, file_size(path)));
    if (!data) {
      log::warn("spool {}: {}", dir_, data.error().message);
      continue;
    }
    size_t off = 0, last_good = 0;
    Record r;
    while (off < data->size()) {
      size_t n = decode(*data, off, &r);
      if (n == 0) {
        size_t next = resync(*data, off);
        if (next < data->size() || i + 1 < segs_.size()) {
          ++corrupt_;
          log::warn("spool {}: skipped an unreadable record in {} at offset {}", dir_, path, start + off);
        }
        off = next;
        continue;
      }
      off += n;
      last_good = off;
      bytes_ += n;
      ++records_;
      class_bytes_[r.shed] += n;
    }
    if (i + 1 == segs_.size() && last_good < data->size()) {
      ++corrupt_;
      log::warn("spool {}: cut a torn record off the end of {} ({} bytes)", dir_, path, data->size() - last_good);
      if (::truncate(path.c_str(), static_cast<off_t>(start + last_good)) != 0)
        log::warn("{}", os_error("truncate " + path).message);
    }
  }
}

Status Spool::open_active(uint64_t id) {
  std::string path = seg_path(id);
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) return os_error("open spool segment " + path);
  active_ = std::move(fd);
  active_size_ = file_size(path);
  if (segs_.empty() || segs_.back() != id) segs_.push_back(id);
  return {};
}

// The sealed segment reaches the disk with the next interval sync, not now: a roll
// every segment_bytes must not stall delivery on the disk (fsync_interval_ms is the
// durability promise). A segment acknowledged before then is never synced at all.
Status Spool::roll() {
  if (data_dirty_) unsynced_.emplace_back(segs_.back(), std::move(active_));
  data_dirty_ = false;
  return open_active(segs_.back() + 1);
}

Status Spool::append(std::vector<Record>& batch) {
  buf_.clear();
  std::array<uint64_t, kShedClasses> pending_bytes{}, pending_n{};  // encoded, not yet written
  std::vector<Cached> fresh;  // this write's records, for the read cache once on disk
  auto write_out = [&]() -> Status {
    if (!buf_.empty()) {
      if (auto st = write_all(active_.get(), buf_, "spool segment " + seg_path(segs_.back())); !st) return st;
      active_size_ += buf_.size();
      data_dirty_ = true;
      buf_.clear();
    }
    for (auto& c : fresh) cache(std::move(c));
    fresh.clear();
    for (int c = 0; c < kShedClasses; ++c) {
      class_bytes_[c] += pending_bytes[c];
      bytes_ += pending_bytes[c];
      records_ += pending_n[c];
    }
    pending_bytes = {};
    pending_n = {};
    return {};
  };
  Status status;
  size_t i = 0;
  for (; i < batch.size(); ++i) {
    Record& r = batch[i];
    r.shed = std::min<uint8_t>(r.shed, kShedKeep);  // indexes per-class tables (as decode() reads it)
    size_t size = record_size(r);
    if (bytes_ + buf_.size() + size > o_.max_bytes && r.shed > kShedTelemetry) {
      if (status = write_out(); !status) break;
      while (bytes_ + size > o_.max_bytes && compact(r.shed)) {
      }
    }
    if (bytes_ + buf_.size() + size > o_.max_bytes) {
      ++shed_[r.shed];
      continue;
    }
    Pos start{segs_.back(), active_size_ + buf_.size()};
    encode(buf_, r);
    fresh.push_back({start, {segs_.back(), active_size_ + buf_.size()}, std::move(r)});
    pending_bytes[r.shed] += size;
    ++pending_n[r.shed];
    if (active_size_ + buf_.size() >= o_.segment_bytes) {
      if (status = write_out(); !status) break;
      if (status = roll(); !status) {
        ++i;
        break;
      }
    }
  }
  if (status.ok()) status = write_out();
  if (!status.ok()) {
    // What did not reach the disk is given up on, and counted by class.
    for (int c = 0; c < kShedClasses; ++c) shed_[c] += pending_n[c];
    for (; i < batch.size(); ++i) ++shed_[batch[i].shed];
    buf_.clear();
  }
  return status;
}

bool Spool::compact(uint8_t below) {
  uint64_t lower = 0;
  for (int c = 0; c < below; ++c) lower += class_bytes_[c];
  if (lower == 0) return false;
  if (active_size_ > 0 && !roll()) return false;  // the active segment becomes compactable
  uint64_t before = bytes_;
  std::vector<uint64_t> keep;
  for (uint64_t id : segs_) {
    if (id == segs_.back() || id < cursor_.seg) {
      keep.push_back(id);
      continue;
    }
    std::string path = seg_path(id);
    uint64_t start = id == cursor_.seg ? cursor_.off : 0;
    auto data = read_range(path, start, file_size(path) - std::min(start, file_size(path)));
    if (!data) {
      keep.push_back(id);
      continue;
    }
    std::string out;
    size_t off = 0;
    Record r;
    while (off < data->size()) {
      size_t n = decode(*data, off, &r);
      if (n == 0) {
        off = resync(*data, off);
        continue;
      }
      if (r.shed < below) {
        ++shed_[r.shed];
        bytes_ -= n;
        class_bytes_[r.shed] -= n;
        --records_;
      } else {
        out.append(*data, off, n);
      }
      off += n;
    }
    std::string tmp = path + ".tmp";
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd || !write_all(fd.get(), out, tmp) || ::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
      log::warn("{}", os_error("compact spool segment " + path).message);
      ::unlink(tmp.c_str());
      keep.push_back(id);
      continue;
    }
    if (id == cursor_.seg) cursor_.off = 0;
    keep.push_back(id);
  }
  segs_ = std::move(keep);
  cursor_dirty_ = true;
  cache_.clear();
  cache_bytes_ = 0;
  drop_peeked();
  return bytes_ < before;
}

void Spool::cache(Cached c) {
  // The cache holds the newest records, contiguous up to the end of the spool: a
  // receiver that keeps up is served from memory, the disk is the durable copy.
  if (!cache_.empty() && (cache_.back().end.seg != c.start.seg || cache_.back().end.off != c.start.off) &&
      !(c.start.off == 0 && c.start.seg == cache_.back().end.seg + 1)) {
    cache_.clear();
    cache_bytes_ = 0;
  }
  cache_bytes_ += c.record.line.size() + kHeader + kMeta;
  cache_.push_back(std::move(c));
  while (cache_bytes_ > kCacheBytes && !cache_.empty()) {
    cache_bytes_ -= cache_.front().record.line.size() + kHeader + kMeta;
    cache_.pop_front();
  }
}

const std::vector<Record>& Spool::peek(size_t max_records, size_t max_bytes) {
  if (!peeked_.empty()) return peeked_;
  size_t taken = 0;
  // Records the cache passed over (read from disk since) are no longer needed there.
  while (!cache_.empty() && (cache_.front().start.seg < read_.seg ||
                             (cache_.front().start.seg == read_.seg && cache_.front().start.off < read_.off))) {
    cache_bytes_ -= cache_.front().record.line.size() + kHeader + kMeta;
    cache_.pop_front();
  }
  while (!cache_.empty() && peeked_.size() < max_records && taken < max_bytes) {
    Cached& c = cache_.front();
    bool here = (c.start.seg == read_.seg && c.start.off == read_.off) ||
                (c.start.off == 0 && c.start.seg > read_.seg &&
                 std::none_of(segs_.begin(), segs_.end(), [&](uint64_t id) { return id >= read_.seg && id < c.start.seg &&
                                                                                    (id != read_.seg || file_size(seg_path(id)) > read_.off); }));
    if (!here) break;
    size_t n = c.record.line.size() + kHeader + kMeta;
    taken += n;
    cache_bytes_ -= n;
    read_ = c.end;
    peeked_end_.push_back(c.end);
    peeked_.push_back(std::move(c.record));
    cache_.pop_front();
  }
  if (!peeked_.empty()) return peeked_;
  while (peeked_.size() < max_records && taken < max_bytes) {
    auto it = std::lower_bound(segs_.begin(), segs_.end(), read_.seg);
    if (it == segs_.end()) break;
    if (*it != read_.seg) read_ = {*it, 0};
    std::string path = seg_path(read_.seg);
    uint64_t size = read_.seg == segs_.back() ? active_size_ : file_size(path);
    if (read_.off >= size) {
      if (read_.seg == segs_.back()) break;
      read_ = {read_.seg + 1, 0};
      continue;
    }
    uint64_t avail = size - read_.off;
    uint64_t want = std::min<uint64_t>(avail, std::max<size_t>(max_bytes - taken, 64u << 10));
    auto data = read_range(path, read_.off, want);
    if (!data || data->empty()) break;
    // The record here is longer than this read: read it whole.
    if (data->size() >= kHeader && get32(data->data()) == kMagic) {
      uint64_t whole = kHeader + uint64_t{get32(data->data() + 4)};
      if (whole > data->size() && whole <= avail && whole <= kHeader + kMaxBody)
        if (auto d = read_range(path, read_.off, whole); d) data = std::move(d);
    }
    bool partial = data->size() < avail;
    size_t off = 0;
    while (off < data->size() && peeked_.size() < max_records && taken < max_bytes) {
      Record r;
      size_t n = decode(*data, off, &r);
      if (n == 0) {
        const char* p = data->data() + off;
        if (partial && off + kHeader <= data->size() && get32(p) == kMagic &&
            off + kHeader + get32(p + 4) > data->size())
          break;  // continues in the next read
        size_t next = resync(*data, off);  // an unreadable record (counted at open): skip it
        if (next >= data->size() && partial) next = std::max(off + 1, data->size() - std::min(data->size(), kHeader));
        off = next;
        continue;
      }
      off += n;
      taken += n;
      peeked_.push_back(std::move(r));
      peeked_end_.push_back({read_.seg, read_.off + off});
    }
    if (off == 0) break;
    read_.off += off;
  }
  return peeked_;
}

void Spool::ack(size_t n) {
  n = std::min(n, peeked_.size());
  if (n == 0) return;
  for (size_t i = 0; i < n; ++i) {
    size_t size = record_size(peeked_[i]);
    bytes_ -= std::min<uint64_t>(bytes_, size);
    class_bytes_[peeked_[i].shed] -= std::min<uint64_t>(class_bytes_[peeked_[i].shed], size);
  }
  records_ -= std::min<uint64_t>(records_, n);
  cursor_ = peeked_end_[n - 1];
  peeked_.erase(peeked_.begin(), peeked_.begin() + static_cast<long>(n));
  peeked_end_.erase(peeked_end_.begin(), peeked_end_.begin() + static_cast<long>(n));
  cursor_dirty_ = true;
  // Sealed segments read to their end are done.
  while (segs_.size() > 1 && cursor_.seg == segs_.front() && cursor_.off >= file_size(seg_path(cursor_.seg))) {
    ::unlink(seg_path(segs_.front()).c_str());
    std::erase_if(unsynced_, [&](const auto& u) { return u.first == segs_.front(); });
    segs_.erase(segs_.begin());
    cursor_ = {segs_.front(), 0};
  }
}

Status Spool::sync(uint64_t now_ns, bool force) {
  if (!force && now_ns - last_sync_ns_ < o_.fsync_interval_ns) return {};
  last_sync_ns_ = now_ns;
  for (auto& [id, fd] : unsynced_)
    if (!segs_.empty() && id >= segs_.front() && ::fdatasync(fd.get()) != 0) return os_error("fsync spool segment " + seg_path(id));
  unsynced_.clear();
  if (data_dirty_ && active_) {
    if (::fdatasync(active_.get()) != 0) return os_error("fsync spool segment " + seg_path(segs_.back()));
    data_dirty_ = false;
  }
  if (cursor_dirty_) {
    cursor_dirty_ = false;
    return write_file_atomic(dir_ + "/cursor", fmt::format("{} {}\n", cursor_.seg, cursor_.off));
  }
  return {};
}

}  // namespace vigil::sinks
