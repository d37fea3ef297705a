#include "policy/pins.h"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "base/fd.h"
#include "base/file.h"
#include "bpf/include/vigil/egress_abi.h"

namespace vigil::policy {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kLayoutPrefix = "egress-v";
constexpr std::string_view kDisabledMarker = "egress-disabled";

bool is_layout_dir(const fs::path& p) { return p.filename().string().starts_with(kLayoutPrefix); }

long bpf_call(int cmd, union bpf_attr& attr) { return syscall(__NR_bpf, cmd, &attr, sizeof(attr)); }

// Zeroes the state map pinned in `dir`: its programs then allow everything.
Status stop_judging(const fs::path& dir) {
  std::string path = (dir / std::string(EgressPins::kStateMap)).string();
  union bpf_attr get;
  std::memset(&get, 0, sizeof(get));
  get.pathname = reinterpret_cast<uint64_t>(path.c_str());
  Fd fd(static_cast<int>(bpf_call(BPF_OBJ_GET, get)));
  if (!fd) return errno == ENOENT ? Status{} : os_error("open pinned map " + path);
  uint32_t zero = 0;
  vigil_eg_state off{};
  union bpf_attr upd;
  std::memset(&upd, 0, sizeof(upd));
  upd.map_fd = static_cast<uint32_t>(fd.get());
  upd.key = reinterpret_cast<uint64_t>(&zero);
  upd.value = reinterpret_cast<uint64_t>(&off);
  upd.flags = BPF_ANY;
  if (bpf_call(BPF_MAP_UPDATE_ELEM, upd) != 0) return os_error("write pinned map " + path);
  return {};
}

}  // namespace

std::string EgressPins::dir() const {
  return (fs::path(pin_root_) / fmt::format("{}{}", kLayoutPrefix, VIGIL_EGRESS_ABI_VERSION)).string();
}

bool EgressPins::exist() const {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(pin_root_, ec))
    if (is_layout_dir(entry.path())) return true;
  return false;
}

bool EgressPins::adoptable() const {
  std::error_code ec;
  return fs::exists(fs::path(dir()) / std::string(kStateMap), ec);
}

Result<size_t> EgressPins::remove_dir(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (unlink(entry.path().c_str()) != 0 && errno != ENOENT)
      return os_error(fmt::format("unpin {}", entry.path().string()));
    ++n;
  }
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT) return os_error(fmt::format("remove {}", dir));
  rmdir(fs::path(dir).parent_path().c_str());  // the pin root too, when nothing else is in it
  return n;
}

Result<size_t> EgressPins::remove() const {
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(pin_root_, ec)) {
    if (!is_layout_dir(entry.path())) continue;
    // Stop judging first, so nothing is refused while links are being removed.
    if (auto s = stop_judging(entry.path()); !s) return s.error();
    auto removed = remove_dir(entry.path().string());
    if (!removed) return removed.error();
    n += *removed;
  }
  rmdir(pin_root_.c_str());  // when empty
  return n;
}

Result<std::vector<std::string>> EgressPins::remove_other_layouts() const {
  std::vector<std::string> removed;
  std::error_code ec;
  std::string ours = fs::path(dir()).filename().string();
  for (const auto& entry : fs::directory_iterator(pin_root_, ec)) {
    if (!is_layout_dir(entry.path()) || entry.path().filename() == ours) continue;
    if (auto r = remove_dir(entry.path().string()); !r) return r.error();
    removed.push_back(entry.path().string());
  }
  return removed;
}

std::string EgressPins::marker() const { return (fs::path(data_dir_) / std::string(kDisabledMarker)).string(); }

bool EgressPins::disabled() const {
  std::error_code ec;
  return fs::exists(marker(), ec);
}

Status EgressPins::mark_disabled() const {
  if (auto s = ensure_private_dir(data_dir_); !s) return s;
  return write_file_atomic(marker(), "vigil policy disable\n");
}

void EgressPins::clear_disabled() const {
  std::error_code ec;
  fs::remove(marker(), ec);
}

}  // namespace vigil::policy
