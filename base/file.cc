#include "base/file.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace vigil {

std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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

}  // namespace vigil
