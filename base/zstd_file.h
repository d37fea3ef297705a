// zstd for event files: a file sink compresses the files it rotates out
// (`compress: zstd`), and the readers (`vigil events`, `vigil audit verify`,
// the chain's resume) take either form, told apart by the zstd frame magic.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vigil {

// True if `head` starts with a zstd frame (magic 28 b5 2f fd).
bool is_zstd(std::string_view head);
// Calls `fn` for each line of `path` (plain or zstd, streamed: memory stays small),
// without its newline; a last line without one too. Stops early when `fn` returns false.
Status for_each_line(const std::string& path, const std::function<bool(std::string_view)>& fn);
// Compresses `src` into `dst` (mode 0600): written beside it under a temporary name,
// synced, then renamed, so `dst` is whole or absent; it keeps `src`'s mtime.
// `src` is left in place.
Status compress_file_zstd(const std::string& src, const std::string& dst, int level = 3);

}  // namespace vigil
