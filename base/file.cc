#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/fd.h"

namespace vigil {

std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void for_each_numeric_entry(const std::string& dir, const std::function<void(uint32_t)>& f) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* ent = readdir(d)) {
    uint32_t n = 0;
    const char* end = ent->d_name + std::strlen(ent->d_name);
    auto [ptr, ec] = std::from_chars(ent->d_name, end, n);
    if (ec == std::errc() && ptr == end && ptr != ent->d_name) f(n);
  }
  closedir(d);
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return os_error("read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return os_error("read " + path);
  return ss.str();
}

Status write_file_atomic(const std::string& path, std::string_view content) {
  std::filesystem::path target(path);
  std::filesystem::path tmp = target;
  tmp.replace_filename("." + target.filename().string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) return os_error("write " + tmp.string());
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    auto err = os_error("install " + target.string());
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    return err;
  }
  return {};
}

Result<std::string> read_range(const std::string& path, uint64_t off, uint64_t len) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return os_error("open " + path);
  std::string out(len, '\0');
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::pread(fd.get(), out.data() + got, len - got, static_cast<off_t>(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("read " + path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

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

std::string trim_right(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace vigil
