#include "collectors/host/cgroup.h"

#include "base/file.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <vector>

namespace vigil {
namespace {

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

std::string_view strip_suffix(std::string_view s, std::string_view suffix) {
  if (s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix)
    s.remove_suffix(suffix.size());
  return s;
}

// "…pod<uid>" with the uid dashed (cgroupfs) or underscored (systemd).
std::string pod_uid_of(std::string_view comp) {
  auto pos = comp.rfind("pod");
  if (pos == std::string_view::npos) return {};
  std::string uid(comp.substr(pos + 3));
  if (uid.size() != 36) return {};
  std::replace(uid.begin(), uid.end(), '_', '-');
  for (size_t i = 0; i < uid.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? uid[i] != '-' : !is_hex(std::string_view(&uid[i], 1))) return {};
  }
  return uid;
}

std::string container_id_of(std::string_view comp) {
  // conmon and other helper scopes carry the id too, but they are not the container.
  if (comp.find("conmon") != std::string_view::npos) return {};
  auto dash = comp.rfind('-');
  std::string_view id = dash == std::string_view::npos ? comp : comp.substr(dash + 1);
  if (id.size() == 64 && is_hex(id)) return std::string(id);
  return {};
}

}  // namespace

ContainerRef parse_container_ref(std::string_view path) {
  ContainerRef ref;
  bool kubelet = false;  // below a kubelet parent ("kubepods…", "kubelet-kubepods…")
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view comp = path.substr(start, end - start);
    // A user's delegated subtree: its names are the user's to choose, so none of
    // them says "pod" or "container" (security review F13).
    if (comp == "user.slice" || comp.starts_with("user@")) return {};
    comp = strip_suffix(strip_suffix(comp, ".scope"), ".slice");
    if (!comp.empty()) {
      if (auto uid = kubelet ? pod_uid_of(comp) : std::string(); !uid.empty()) ref.pod_uid = uid;
      if (auto id = container_id_of(comp); !id.empty()) ref.container_id = id;
      kubelet = kubelet || comp.find("kubepods") != std::string_view::npos;
    }
    start = end + 1;
  }
  return ref;
}

Result<std::string> find_cgroup2_mount(std::string_view mountinfo) {
  // Fields: id parent major:minor root mountpoint options [optional...] - fstype source super
  std::istringstream in{std::string(mountinfo)};
  std::string line;
  while (std::getline(in, line)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, sep));
    std::string id, parent, devno, root, mountpoint;
    head >> id >> parent >> devno >> root >> mountpoint;
    if (!mountpoint.empty()) return mountpoint;
  }
  return Error{"find cgroup2 mount in /proc/self/mountinfo: no cgroup2 file system is mounted"};
}

std::string parse_proc_cgroup_v2(std::string_view text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (line.substr(0, 3) == "0::") return std::string(line.substr(3));
    start = end + 1;
  }
  return {};
}

std::string CgroupResolver::resolve(uint64_t id, uint32_t pid) {
  if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  std::string path =
      parse_proc_cgroup_v2(read_small_file(proc_root_ + "/" + std::to_string(pid) + "/cgroup"));
  // Only cache what the cgroup fs confirms: the process may have moved since the event.
  struct stat st {};
  if (!path.empty() && !mount_.empty() && stat((mount_ + path).c_str(), &st) == 0 && st.st_ino == id) {
    cache_.emplace(id, path);
    return path;
  }
  // The process has exited (a short-lived one in a cgroup not seen before) or moved:
  // a cgroup v2 id is its directory's inode number, so the tree names it.
  if (std::string found = find_by_inode(id); !found.empty()) return found;
  return path;
}

std::string CgroupResolver::find_by_inode(uint64_t id) {
  if (mount_.empty()) return {};
  // At most one walk a second: a cgroup removed before we looked is not found at all.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
  if (last_walk_ns_ && now - last_walk_ns_ < 1'000'000'000ull) return {};
  last_walk_ns_ = now;
  // Every directory of the tree is remembered by a walk; a user who makes and
  // removes cgroups by the thousand must not grow this for good (F15).
  if (cache_.size() > kMaxCached) cache_.clear();
  namespace fs = std::filesystem;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(mount_, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
    struct stat st {};
    if (stat(it->path().c_str(), &st) == 0)
      cache_.try_emplace(st.st_ino, "/" + fs::relative(it->path(), mount_, ec).string());
  }
  auto hit = cache_.find(id);
  return hit == cache_.end() ? std::string() : hit->second;
}

}  // namespace vigil
