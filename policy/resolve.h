// Selectors against this host: which executables (by inode), cgroups (by id)
// and uids the compiled policies select now. Re-run as binaries and cgroups come.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "policy/compiler.h"
#include "policy/kernel_tables.h"

namespace vigil::policy {

// Which policies' pod selectors name the cgroup at `rel` (a path under the cgroup
// root): the pod-level cgroups of the selected pods (agent/policy asks the pod cache).
using PodCgroupMask = std::function<uint64_t(const std::string& rel)>;

EgressSelectors resolve_selectors(const Tables& tables, const std::string& cgroup_root,
                                  const std::string& proc_root = "/proc", const PodCgroupMask& pods = {});

// The kernel's dev_t encoding of a user-space st_dev (MAJOR << 20 | MINOR).
uint32_t kernel_dev(uint64_t st_dev);

}  // namespace vigil::policy
