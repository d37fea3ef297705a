#include "agent/sinks/sinks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace vigil {

FdSink::~FdSink() { (void)flush(); }

Status FdSink::write(std::string_view line) {
  buf_.append(line);
  buf_.push_back('\n');
  if (buf_.size() >= (256u << 10)) return flush();
  return {};
}

Status FdSink::flush() {
  size_t off = 0;
  while (off < buf_.size()) {
    ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      // Keep what did not go out (a full disk may drain): drop only beyond the backlog.
      buf_.erase(0, off);
      if (buf_.size() > kMaxBacklog) {
        dropped_ += std::count(buf_.begin(), buf_.end(), '\n');
        buf_.clear();
      }
      return os_error(fmt::format("write events to {}", name_), err);
    }
    off += static_cast<size_t>(n);
  }
  buf_.clear();
  return {};
}

Result<std::unique_ptr<Sink>> open_file_sink(const std::string& path) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Error{fmt::format("create directory {} for file sink: {}", parent.string(), ec.message())};
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd) return os_error(fmt::format("open file sink {}", path));
  return std::unique_ptr<Sink>(new FdSink(path, std::move(fd)));
}

Result<std::vector<std::unique_ptr<Sink>>> open_sinks(const std::vector<SinkConfig>& configs) {
  std::vector<std::unique_ptr<Sink>> sinks;
  for (const auto& c : configs) {
    if (c.type == "stdout") {
      sinks.push_back(std::make_unique<FdSink>("stdout", STDOUT_FILENO));
    } else if (c.type == "file") {
      auto s = open_file_sink(c.path);
      if (!s) return s.error();
      sinks.push_back(std::move(*s));
    } else {
      return Error{fmt::format("sink type '{}' is not implemented in this version of vigild "
                               "(implemented: stdout, file)", c.type)};
    }
  }
  return sinks;
}

}  // namespace vigil
