// cgroup v2: finding the mount, resolving a cgroup id to its path, and naming
// the container and pod a cgroup path belongs to.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"

namespace vigil {

struct ContainerRef {
  std::string container_id;  // 64 hex chars, empty when the path names none
  std::string pod_uid;       // dashed UUID, empty when the path names none
};

// Understands docker (cgroupfs and systemd drivers), containerd, cri-o and podman
// layouts, with kubepods slices of every QoS class. A pod is named only below a
// kubelet parent ("kubepods…"), and nothing below a user's delegated subtree
// (user.slice, user@UID.service), whose names the user chooses.
ContainerRef parse_container_ref(std::string_view cgroup_path);

// The cgroup2 mount point from the text of /proc/self/mountinfo.
Result<std::string> find_cgroup2_mount(std::string_view mountinfo);

// The "0::" line of /proc/PID/cgroup text (the v2 path), or empty.
std::string parse_proc_cgroup_v2(std::string_view proc_cgroup);

// Maps cgroup v2 ids (as bpf_get_current_cgroup_id returns) to paths.
class CgroupResolver {
 public:
  CgroupResolver(std::string mount, std::string proc_root)
      : mount_(std::move(mount)), proc_root_(std::move(proc_root)) {}
  // The path of `id`; learnt from /proc/PID/cgroup of a process in it on a miss.
  std::string resolve(uint64_t id, uint32_t pid);
  const std::string& mount() const { return mount_; }

 private:
  std::string find_by_inode(uint64_t id);

  std::string mount_;
  std::string proc_root_;
  static constexpr size_t kMaxCached = 65536;
  std::unordered_map<uint64_t, std::string> cache_;
  uint64_t last_walk_ns_ = 0;
};

}  // namespace vigil
