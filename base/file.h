// Small file helpers: whole-file reads, and replacing a file atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vigil {

// Text of a small file (e.g. under /proc), empty when it cannot be read.
std::string read_small_file(const std::string& path);
// The whole file, or "read PATH: ENOENT (...)".
Result<std::string> read_file(const std::string& path);
// Writes `content` to a hidden temporary file beside `path`, then renames it
// over `path`: readers see the old file or the new one, never a part.
Status write_file_atomic(const std::string& path, std::string_view content);
// Up to `len` bytes of `path` from `off` (fewer at its end).
Result<std::string> read_range(const std::string& path, uint64_t off, uint64_t len);
// Writes as much of `data` as `fd` takes (EINTR retried); the bytes written, and in
// `err` the errno that stopped it (0: all written).
size_t write_some(int fd, std::string_view data, int& err);
// Calls `f` with every entry of directory `dir` whose name is a decimal number
// (the pids under /proc, the fds under /proc/PID/fd); nothing when `dir` cannot
// be opened.
void for_each_numeric_entry(const std::string& dir, const std::function<void(uint32_t)>& f);
// `s` without trailing spaces, tabs and line ends (a value read from a file).
std::string trim_right(std::string s);

}  // namespace vigil
