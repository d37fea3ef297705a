#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/fd.h"
#include "base/log.h"

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
  std::filesystem::path tmpl = target;
  tmpl.replace_filename("." + target.filename().string() + ".XXXXXX");
  // mkstemp: a new file of our own (O_EXCL, 0600): a name planted beside the
  // target cannot redirect the write (security review F19).
  std::string tmp = tmpl.string();
  Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) return os_error("create a temporary file beside " + path);
  int err = 0;
  bool ok = write_some(fd.get(), content, err) == content.size();
  if (!ok || std::rename(tmp.c_str(), target.c_str()) != 0) {
    auto e = os_error((ok ? "install " : "write ") + (ok ? target.string() : tmp), err ? err : errno);
    ::unlink(tmp.c_str());
    return e;
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

namespace vigil {
namespace {

// A component on the way to a private directory: trusted when only root or
// this user can replace what it names.
Status check_parent(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return os_error("inspect " + dir);
  if (S_ISLNK(st.st_mode)) {
    if (st.st_uid != 0) return Error{fmt::format("{} is a symbolic link of uid {}: not trusted", dir, st.st_uid)};
    if (::stat(dir.c_str(), &st) != 0) return os_error("follow " + dir);
  }
  if (!S_ISDIR(st.st_mode)) return Error{fmt::format("{} is not a directory", dir)};
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return Error{fmt::format("{} belongs to uid {}: not trusted (it could replace what is below it)", dir, st.st_uid)};
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    return Error{fmt::format("{} is writable by others (mode {:o}) and not sticky: not trusted", dir,
                             st.st_mode & 07777)};
  return {};
}

}  // namespace

Status ensure_private_dir(const std::string& path) {
  if (path.empty() || path[0] != '/') return Error{fmt::format("{}: an absolute directory path is needed", path)};
  std::string prefix;
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  std::vector<std::string> parts;
  for (const auto& part : p.relative_path()) parts.push_back(part.string());
  while (!parts.empty() && parts.back().empty()) parts.pop_back();
  if (auto s = check_parent("/"); !s) return s;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string parent = prefix.empty() ? "/" : prefix;
    prefix += "/" + parts[i];
    bool last = i + 1 == parts.size();
    struct stat st {};
    if (::lstat(prefix.c_str(), &st) != 0) {
      if (errno != ENOENT) return os_error("inspect " + prefix);
      if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return os_error("create " + prefix);
      if (::lstat(prefix.c_str(), &st) != 0) return os_error("inspect " + prefix);
    }
    if (!last) {
      if (auto s = check_parent(prefix); !s) return s;
      continue;
    }
    bool ours = S_ISDIR(st.st_mode) && st.st_uid == ::geteuid();
    if (!ours) {
      // Someone else's, made where others may create entries: moved aside.
      struct stat pst {};
      if (::stat(parent.c_str(), &pst) != 0 || !(pst.st_mode & S_ISVTX))
        return Error{fmt::format("{} belongs to uid {} (not this user): not trusted", prefix, st.st_uid)};
      // No dot in the name: bpffs refuses names with one.
      std::string aside = fmt::format("{}-untrusted-uid{}", prefix, st.st_uid);
      for (int n = 1; ::access(aside.c_str(), F_OK) == 0; ++n)
        aside = fmt::format("{}-untrusted-uid{}-{}", prefix, st.st_uid, n);
      if (::rename(prefix.c_str(), aside.c_str()) != 0) return os_error(fmt::format("move {} aside", prefix));
      log::warn("{} was made by uid {}, not by this agent: moved to {} and made anew", prefix, st.st_uid, aside);
      if (::mkdir(prefix.c_str(), 0700) != 0) return os_error("create " + prefix);
      if (::lstat(prefix.c_str(), &st) != 0) return os_error("inspect " + prefix);
    }
    if ((st.st_mode & 077) && ::chmod(prefix.c_str(), st.st_mode & 07700) != 0) return os_error("chmod " + prefix);
  }
  return {};
}

}  // namespace vigil
