// Small file helpers: whole-file reads, and replacing a file atomically.
#pragma once

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

}  // namespace vigil
