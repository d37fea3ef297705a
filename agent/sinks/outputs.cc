#include "agent/sinks/outputs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace vigil::sinks {
namespace {

// Writes as much of `data` as the fd takes; the bytes written.
size_t write_some(int fd, std::string_view data, int& err) {
  size_t off = 0;
  err = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    off += static_cast<size_t>(n);
  }
  return off;
}

// Writes lines [from, from+n) of `batch`, after the rest of a line a failed write
// cut (`tail`, the end of batch[from]): the lines now wholly written. A new cut
// leaves its rest in `tail` for the next call, so no line is written twice or torn.
size_t write_lines(int fd, const std::vector<Record>& batch, size_t from, size_t n, std::string& tail,
                   std::string& buf, uint64_t& written, int& err) {
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
    buf += batch[i].line;
    buf += '\n';
  }
  size_t w = write_some(fd, buf, err);
  written += w;
  size_t at = 0;
  for (size_t i = from + done; i < from + n; ++i) {
    size_t len = batch[i].line.size() + 1;
    if (w - at < len) {
      if (w > at) tail = buf.substr(w, len - (w - at));  // the unwritten rest of this line
      break;
    }
    at += len;
    ++done;
  }
  return done;
}

}  // namespace

Delivery FdOutput::deliver(const std::vector<Record>& batch) {
  Delivery d;
  int err = 0;
  uint64_t written = 0;
  d.delivered = write_lines(fd_, batch, 0, batch.size(), tail_, buf_, written, err);
  if (err) d.error = os_error("write events to " + label_, err).message;
  return d;
}

Result<std::unique_ptr<FileOutput>> FileOutput::open(FileOptions o) {
  std::unique_ptr<FileOutput> f(new FileOutput(std::move(o)));
  if (auto st = f->reopen(); !st) return st.error();
  return f;
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

Delivery FileOutput::deliver(const std::vector<Record>& batch) {
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
    while (i + n < batch.size() &&
           (n == 0 || o_.max_bytes == 0 || size_ + bytes + batch[i + n].line.size() + 1 <= o_.max_bytes)) {
      bytes += (n == 0 && !tail_.empty()) ? 0 : batch[i + n].line.size() + 1;
      ++n;
    }
    if (tail_.empty() && o_.max_bytes && size_ > 0 && size_ + bytes > o_.max_bytes) {
      if (auto st = rotate(); !st) return fail(st);
      continue;
    }
    int err = 0;
    size_t lines = write_lines(fd_.get(), batch, i, n, tail_, buf_, size_, err);
    d.delivered += lines;
    i += lines;
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
