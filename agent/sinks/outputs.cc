#include "agent/sinks/outputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "agent/events/events.h"
#include "base/clock.h"
#include "base/file.h"

namespace vigil::sinks {
namespace {

// Writes lines [from, from+n) of `batch`, after the rest of a line a failed write
// cut (`tail`, the end of batch[from]): the lines now wholly written. A new cut
// leaves its rest in `tail` for the next call, so no line is written twice or torn.
template <typename LineAt>
size_t write_lines(int fd, LineAt line_at, size_t from, size_t n, std::string& tail, std::string& buf,
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
  buf.clear();
  for (size_t i = from + done; i < from + n; ++i) {
    buf += line_at(i);
    buf += '\n';
  }
  size_t w = write_some(fd, buf, err);
  written += w;
  size_t at = 0;
  for (size_t i = from + done; i < from + n; ++i) {
    size_t len = line_at(i).size() + 1;
    if (w - at < len) {
      if (w > at) tail = buf.substr(w, len - (w - at));  // the unwritten rest of this line
      break;
    }
    at += len;
    ++done;
  }
  return done;
}

// What sealing adds to a line: ,"chain":{"prev":"<64>","hash":"<64>"} (its closing brace stays).
constexpr size_t kSealBytes = 158;

}  // namespace

Delivery FdOutput::deliver(std::span<const Record> batch) {
  Delivery d;
  int err = 0;
  uint64_t written = 0;
  auto line_at = [&](size_t i) -> std::string_view { return batch[i].line; };
  d.delivered = write_lines(fd_, line_at, 0, batch.size(), tail_, buf_, written, err);
  if (err) d.error = os_error("write events to " + label_, err).message;
  return d;
}

Result<std::unique_ptr<FileOutput>> FileOutput::open(FileOptions o) {
  std::unique_ptr<FileOutput> f(new FileOutput(std::move(o)));
  if (auto st = f->reopen(); !st) return st.error();
  if (f->o_.chain)
    if (auto st = f->resume_chain(); !st) return st.error();
  return f;
}

// The chain goes on from the last sealed line of PATH (or of PATH.1 when PATH is new
// after a rotation); a torn last line (a crash mid-write) is cut and the cut is named.
Status FileOutput::resume_chain() {
  std::string from = o_.path, prev(audit::kGenesis);
  uint64_t cut = 0;
  for (const std::string& p : {o_.path, o_.path + ".1"}) {
    // Only the end of the file: its last line (a file may be max_size_mb long).
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(p, ec);
    if (ec || size == 0) continue;
    uint64_t want = std::min<uint64_t>(size, 64u << 10);
    Result<std::string> text = std::string();
    while (true) {
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
  Fd fd(::open(o_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) return os_error("open file sink " + o_.path);
  struct stat st{};
  if (::fstat(fd.get(), &st) == 0) {
    size_ = static_cast<uint64_t>(st.st_size);
    if ((st.st_mode & 0777) != 0600) ::fchmod(fd.get(), 0600);  // an older file: events are sensitive
  }
  fd_ = std::move(fd);
  return {};
}

Status FileOutput::rotate() {
  if (o_.max_files <= 1) {
    if (::truncate(o_.path.c_str(), 0) != 0) return os_error("truncate " + o_.path);
  } else {
    ::unlink(fmt::format("{}.{}", o_.path, o_.max_files - 1).c_str());
    for (uint32_t i = o_.max_files - 1; i > 1; --i)
      ::rename(fmt::format("{}.{}", o_.path, i - 1).c_str(), fmt::format("{}.{}", o_.path, i).c_str());
    if (::rename(o_.path.c_str(), (o_.path + ".1").c_str()) != 0) return os_error("rotate " + o_.path);
  }
  ++rotations_;
  return reopen();
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
           (n == 0 || o_.max_bytes == 0 || size_ + bytes + batch[i + n].line.size() + seal + 1 <= o_.max_bytes)) {
      bytes += (n == 0 && !tail_.empty()) ? 0 : batch[i + n].line.size() + seal + 1;
      ++n;
    }
    if (tail_.empty() && o_.max_bytes && size_ > 0 && size_ + bytes > o_.max_bytes) {
      if (auto st = rotate(); !st) return fail(st);
      continue;
    }
    int err = 0;
    size_t lines;
    if (o_.chain) {
      // Seal this round's lines; the chain keeps the hash of the last line that reached the file.
      std::string before = chain_.last();
      bool resumed = !tail_.empty();  // batch[i] was sealed and partly written last time
      sealed_.resize(n);
      std::vector<std::string> hashes(n);
      for (size_t k = resumed ? 1 : 0; k < n; ++k) {
        chain_.seal(batch[i + k].line, sealed_[k]);
        hashes[k] = chain_.last();
      }
      auto line_at = [&](size_t j) -> std::string_view { return sealed_[j - i]; };
      lines = write_lines(fd_.get(), line_at, i, n, tail_, buf_, size_, err);
      size_t started = lines + (tail_.empty() ? 0 : 1);  // lines whose bytes began to reach the file
      if (started < n) chain_ = audit::Chain(o_.hmac_key, started == 0 || (resumed && started == 1) ? before : hashes[started - 1]);
    } else {
      auto line_at = [&](size_t j) -> std::string_view { return batch[j].line; };
      lines = write_lines(fd_.get(), line_at, i, n, tail_, buf_, size_, err);
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
    if (o_.max_bytes && size_ >= o_.max_bytes && tail_.empty())
      if (auto st = rotate(); !st) return fail(st);
  }
  return d;
}

}  // namespace vigil::sinks
