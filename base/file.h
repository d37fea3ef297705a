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

// A directory only this user (root, for vigild) can change what it holds:
// `path` and its missing parents are made with mode 0700, and every component
// is checked from "/" down: a directory (a symlink only when root's), owned by
// root or this user, writable by others only when sticky (/tmp, a bpffs root).
// `path` itself ends owned by this user without group or other access. One
// that someone else made where they could (in a sticky directory: a user's
// `mkdir /sys/fs/bpf/vigil` before the agent's first start) is renamed aside
// to "<path>-untrusted-uid<N>" and named in the log, never used (security
// review F8, F19). An error names the component that cannot be trusted.
Status ensure_private_dir(const std::string& path);

}  // namespace vigil
