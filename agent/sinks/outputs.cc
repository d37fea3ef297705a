#include "agent/sinks/outputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "agent/events/events.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/zstd_file.h"

namespace vigil::sinks {
namespace {

// Writes the rest of a line a failed write cut (`tail`), then `buf`, whose lines end
// at `ends` (the offset just past each one's newline): the lines now wholly written,
// the tail's own counted. A new cut leaves its rest in `tail` for the next call, so
// no line is written twice or torn.
size_t write_prepared(int fd, std::string& tail, const std::string& buf, const std::vector<size_t>& ends,
                      uint64_t& written, int& err) {
  size_t done = 0;
  err = 0;
  if (!tail.empty()) {
    size_t w = write_some(fd, tail, err);
    written += w;
    tail.erase(0, w);
    if (!tail.empty()) return 0;
    ++done;
  }
  if (buf.empty()) return done;
  size_t w = write_some(fd, buf, err);
  written += w;
  size_t start = 0;
  for (size_t end : ends) {
    if (w < end) {
      if (w > start) tail.assign(buf, w, end - w);  // the unwritten rest of this line
      break;
    }
    ++done;
    start = end;
  }
  return done;
}

// Lines [from, from+n) of `batch` and their ends into `buf`/`ends`.
void prepare(std::span<const Record> batch, size_t from, size_t n, std::string& buf, std::vector<size_t>& ends) {
  buf.clear();
  ends.clear();
  for (size_t i = from; i < from + n; ++i) {
    buf += batch[i].line;
    buf += '\n';
    ends.push_back(buf.size());
  }
}

// What sealing adds to a line: ,"chain":{"prev":"<64>","hash":"<64>"} (its closing brace stays).
constexpr size_t kSealBytes = 158;

}  // namespace

Delivery FdOutput::deliver(std::span<const Record> batch) {
  Delivery d;
  int err = 0;
  uint64_t written = 0;
  prepare(batch, tail_.empty() ? 0 : 1, batch.size() - (tail_.empty() ? 0 : 1), buf_, ends_);
  d.delivered = write_prepared(fd_, tail_, buf_, ends_, written, err);
  if (err) d.error = os_error("write events to " + label_, err).message;
  return d;
}

Result<std::unique_ptr<FileOutput>> FileOutput::open(FileOptions o) {
  std::unique_ptr<FileOutput> f(new FileOutput(std::move(o)));
  if (auto st = f->reopen(); !st) return st.error();
  if (f->o_.zstd) f->compress_rotated();  // a rotation the last run did not get to compress
  if (f->o_.chain)
    if (auto st = f->resume_chain(); !st) return st.error();
  return f;
}

// The chain goes on from the last sealed line of PATH (or of PATH.1 when PATH is new
// after a rotation); a torn last line (a crash mid-write) is cut and the cut is named.
Status FileOutput::resume_chain() {
  std::string from = o_.path, prev(audit::kGenesis);
  uint64_t cut = 0;
  for (const std::string& p : {o_.path, o_.path + ".1", o_.path + ".1.zst"}) {
    // Only the end of the file: its last line (a file may be max_size_mb long).
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(p, ec);
    if (ec || size == 0) continue;
    uint64_t want = std::min<uint64_t>(size, 64u << 10);
    Result<std::string> text = std::string();
    if (p.ends_with(".zst")) {
      // A compressed rotated file: its last two lines, read through once.
      std::string before, last;
      auto st = for_each_line(p, [&](std::string_view l) {
        before.swap(last);
        last.assign(l);
        return true;
      });
      if (!st) {
        log::warn("file sink {}: {}; the chain starts afresh", o_.path, st.error().message);
        continue;
      }
      text = before + "\n" + last + "\n";
      size = want = text->size();
    }
    while (!p.ends_with(".zst")) {
      text = read_range(p, size - want, want);
      if (!text) break;
      // The window must hold the whole last line (or two: the torn one and the one before).
      size_t lines = std::count(text->begin(), text->end(), '\n');
      if (want == size || lines >= 2) break;
      want = std::min(size, want * 4);
    }
    if (!text || text->empty()) continue;
    const uint64_t base = size - text->size();
    size_t end = text->size();
    if (text->back() != '\n') {
      size_t nl = text->rfind('\n');
      end = nl == std::string::npos ? 0 : nl + 1;
      if (p == o_.path) {
        cut = text->size() - end;
        if (::ftruncate(fd_.get(), static_cast<off_t>(base + end)) != 0)
          return os_error("cut the torn last line of " + p);
        size_ = base + end;
      }
    }
    if (end == 0) continue;
    size_t start = text->rfind('\n', end - 2);
    start = start == std::string::npos ? 0 : start + 1;
    std::string_view last(text->data() + start, end - 1 - start), body, p_hex, h_hex;
    if (audit::unseal(last, body, p_hex, h_hex)) {
      prev = std::string(h_hex);
      from = p;
    }
    break;
  }
  chain_ = audit::Chain(o_.hmac_key, prev);
  std::string epoch = fmt::format(
      "{{\"v\":1,\"time\":\"{}\",\"node\":\"{}\",\"kind\":\"epoch\",\"boot_id\":\"{}\",\"epoch\":"
      "{{\"prev_file\":\"{}\",\"prev_hash\":\"{}\",\"cut_bytes\":{}}}}}",
      format_rfc3339_ns(BootClock::now_wall_ns()), o_.node, o_.boot_id,
      prev == audit::kGenesis ? "" : std::filesystem::path(from).filename().string(), prev, cut);
  Record r;
  r.line = std::move(epoch);
  auto d = deliver(std::span<const Record>(&r, 1));
  if (!d.error.empty()) return Error{d.error};
  return {};
}

Status FileOutput::reopen() {
  std::error_code ec;
  auto parent = std::filesystem::path(o_.path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Error{fmt::format("create directory {} for file sink: {}", parent.string(), ec.message())};
  // In a directory others can write (security review F19): never through a
  // symlink, and never into a file someone else made there first.
  struct stat dir{};
  std::string dir_path = parent.empty() ? "." : parent.string();
  if (::stat(dir_path.c_str(), &dir) != 0) return os_error("inspect " + dir_path);
  bool shared = dir.st_mode & (S_IWGRP | S_IWOTH);
  if (shared && !(dir.st_mode & S_ISVTX))
    return Error{fmt::format("file sink {}: its directory is writable by others (mode {:o}): anyone could replace "
                             "the file", o_.path, dir.st_mode & 07777)};
  Fd fd(::open(o_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (shared ? O_NOFOLLOW : 0), 0600));
  if (!fd) return os_error("open file sink " + o_.path);
  struct stat st{};
  if (shared && (::fstat(fd.get(), &st) != 0 || st.st_uid != ::geteuid()))
    return Error{fmt::format("file sink {}: the file belongs to uid {}, not to vigild", o_.path, st.st_uid)};
  if (::fstat(fd.get(), &st) == 0) {
    // /dev/null, a FIFO or a terminal is written to as it is: never chmod-ed, renamed or truncated.
    regular_ = S_ISREG(st.st_mode);
    size_ = regular_ ? static_cast<uint64_t>(st.st_size) : 0;
    if (regular_ && st.st_uid == ::geteuid() && (st.st_mode & 0777) != 0600) ::fchmod(fd.get(), 0600);  // an older file: events are sensitive
  }
  fd_ = std::move(fd);
  return {};
}

Status FileOutput::rotate() {
  if (o_.max_files <= 1) {
    if (::truncate(o_.path.c_str(), 0) != 0) return os_error("truncate " + o_.path);
  } else {
    auto rotated = [&](uint32_t i, bool z) { return fmt::format("{}.{}{}", o_.path, i, z ? ".zst" : ""); };
    for (bool z : {false, true}) ::unlink(rotated(o_.max_files - 1, z).c_str());
    for (uint32_t i = o_.max_files - 1; i > 1; --i)
      for (bool z : {false, true}) ::rename(rotated(i - 1, z).c_str(), rotated(i, z).c_str());
    if (::rename(o_.path.c_str(), rotated(1, false).c_str()) != 0) return os_error("rotate " + o_.path);
  }
  ++rotations_;
  auto st = reopen();
  if (o_.zstd) compress_rotated();
  return st;
}

// PATH.1 -> PATH.1.zst. A failure (a full disk) leaves PATH.1 as it is, with a warning:
// readers take either form, and nothing is lost.
void FileOutput::compress_rotated() {
  if (o_.max_files <= 1) return;
  std::string plain = o_.path + ".1", packed = plain + ".zst";
  std::error_code ec;
  if (!std::filesystem::exists(plain, ec)) return;
  if (std::filesystem::exists(packed, ec)) {  // compressed whole (it is renamed into place), then cut short
    ::unlink(plain.c_str());
    return;
  }
  if (auto st = compress_file_zstd(plain, packed); !st) {
    log::warn("file sink {}: {} (the rotated file stays uncompressed)", o_.path, st.error().message);
    return;
  }
  ::unlink(plain.c_str());
}

Delivery FileOutput::deliver(std::span<const Record> batch) {
  Delivery d;
  size_t i = 0;
  auto fail = [&](const Status& st) {
    d.error = st.error().message;
    return d;
  };
  while (i < batch.size()) {
    if (!fd_)
      if (auto st = reopen(); !st) return fail(st);
    // The lines that fit before the rotation size (at least one: a huge line still goes out).
    size_t n = 0;
    uint64_t bytes = tail_.size();
    const size_t seal = o_.chain ? kSealBytes : 0;
    while (i + n < batch.size() &&
           (n == 0 || !regular_ || o_.max_bytes == 0 || size_ + bytes + batch[i + n].line.size() + seal + 1 <= o_.max_bytes)) {
      bytes += (n == 0 && !tail_.empty()) ? 0 : batch[i + n].line.size() + seal + 1;
      ++n;
    }
    if (tail_.empty() && regular_ && o_.max_bytes && size_ > 0 && size_ + bytes > o_.max_bytes) {
      if (auto st = rotate(); !st) return fail(st);
      continue;
    }
    int err = 0;
    size_t lines;
    const bool resumed = !tail_.empty();  // batch[i]'s rest is in tail_ (sealed, partly written last time)
    if (o_.chain) {
      // Seal this round's lines straight into the write buffer; the chain keeps the
      // hash of the last line that reached the file.
      const audit::Digest before = chain_.last_digest();
      buf_.clear();
      ends_.clear();
      digests_.clear();
      for (size_t k = resumed ? 1 : 0; k < n; ++k) {
        chain_.seal_append(batch[i + k].line, buf_);
        buf_ += '\n';
        ends_.push_back(buf_.size());
        digests_.push_back(chain_.last_digest());
      }
      lines = write_prepared(fd_.get(), tail_, buf_, ends_, size_, err);
      size_t started = lines + (tail_.empty() ? 0 : 1);  // lines whose bytes began to reach the file
      if (started < n)
        chain_.reset(started == 0 || (resumed && started == 1) ? before : digests_[started - 1 - (resumed ? 1 : 0)]);
    } else {
      prepare(batch, i + (resumed ? 1 : 0), n - (resumed ? 1 : 0), buf_, ends_);
      lines = write_prepared(fd_.get(), tail_, buf_, ends_, size_, err);
    }
    d.delivered += lines;
    i += lines;
    if (o_.chain && lines && tail_.empty()) {
      std::lock_guard l(state_mu_);
      for (size_t k = i - lines; k < i; ++k) state_.seq = std::max(state_.seq, batch[k].seq);
      state_.hash = chain_.last();
      state_.file = std::filesystem::path(o_.path).filename().string();
      state_.rotations = rotations_;
    }
    if (err) {
      d.error = os_error("write events to " + o_.path, err).message;
      return d;
    }
    if (regular_ && o_.max_bytes && size_ >= o_.max_bytes && tail_.empty())
      if (auto st = rotate(); !st) return fail(st);
  }
  return d;
}

}  // namespace vigil::sinks
