#include "policy/resolve.h"

#include <glob.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "base/file.h"
#include "policy/selector.h"

namespace vigil::policy {
namespace fs = std::filesystem;

uint32_t kernel_dev(uint64_t st_dev) {
  return static_cast<uint32_t>((major(st_dev) << 20) | minor(st_dev));
}

EgressSelectors resolve_selectors(const Tables& t, const std::string& cgroup_root,
                                  const std::string& proc_root, const PodCgroupMask& pods) {
  EgressSelectors out;
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> bins;
  auto add_bin = [&](const struct stat& st, size_t policy) {
    bins[{kernel_dev(st.st_dev), st.st_ino}] |= 1ull << policy;
  };
  bool any_bins = false, any_cgroups = false;
  for (size_t i = 0; i < t.policies.size(); ++i) {
    const auto& s = t.policies[i].selector;
    any_bins |= !s.binaries.empty();
    any_cgroups |= !s.cgroups.empty() || (!s.pods.empty() && pods);
    // Binaries: every file the globs name now (the kernel matches the
    // executable's inode, so symlinked and relative invocations match too).
    for (const auto& g : s.binaries) {
      glob_t gl{};
      if (glob(g.c_str(), GLOB_NOSORT, nullptr, &gl) == 0) {
        for (size_t k = 0; k < gl.gl_pathc; ++k) {
          struct stat st {};
          if (stat(gl.gl_pathv[k], &st) == 0 && S_ISREG(st.st_mode)) add_bin(st, i);
        }
      }
      globfree(&gl);
    }
    for (uint32_t uid : s.uids) {
      vigil_eg_uid_key k{0, uid};
      auto it = std::find_if(out.uids.begin(), out.uids.end(), [&](auto& e) { return e.first.uid == uid; });
      if (it == out.uids.end()) out.uids.push_back({k, 1ull << i});
      else it->second |= 1ull << i;
    }
  }
  // Running processes whose executable path (in their own mount namespace)
  // matches: covers binaries inside containers and files replaced since exec.
  // Not for processes in another user namespace than the agent's: an
  // unprivileged user can mount any file at any path there (`unshare -Urm`, a
  // bind mount at /usr/bin/curl) and would be selected by another binary's
  // policy (F13). Containers of root's runtimes share the agent's.
  struct stat init_userns {};
  bool have_init = stat((fs::path(proc_root) / "self" / "ns" / "user").c_str(), &init_userns) == 0;
  if (any_bins) {
    for_each_numeric_entry(proc_root, [&](uint32_t pid) {
      struct stat userns {};
      fs::path ns = fs::path(proc_root) / std::to_string(pid) / "ns" / "user";
      if (have_init && (stat(ns.c_str(), &userns) != 0 || userns.st_ino != init_userns.st_ino ||
                        userns.st_dev != init_userns.st_dev))
        return;
      fs::path link = fs::path(proc_root) / std::to_string(pid) / "exe";
      std::error_code lec;
      std::string exe = fs::read_symlink(link, lec).string();
      if (lec || exe.empty()) return;
      if (exe.ends_with(" (deleted)")) exe.resize(exe.size() - 10);
      for (size_t i = 0; i < t.policies.size(); ++i) {
        if (!glob_any(t.policies[i].selector.binaries, exe)) continue;
        struct stat st {};
        if (stat(link.c_str(), &st) == 0) add_bin(st, i);
      }
    });
  }
  for (auto& [k, mask] : bins) out.bins.push_back({{0, k.first, k.second}, mask});

  // Cgroups: each cgroup a glob names exactly; the kernel extends it to descendants.
  if (any_cgroups && !cgroup_root.empty()) {
    struct stat top {};
    bool have_top = stat(cgroup_root.c_str(), &top) == 0;
    auto visit = [&](const fs::path& dir, const std::string& rel) {
      struct stat st {};
      if (stat(dir.c_str(), &st) != 0) return;
      uint64_t mask = 0;
      for (size_t i = 0; i < t.policies.size(); ++i)
        if (glob_any(t.policies[i].selector.cgroups, rel)) mask |= 1ull << i;
      // Pods by their directory's name only where its owner is the hierarchy's
      // (a delegated directory belongs to the user it was delegated to: F13).
      if (pods && have_top && st.st_uid == top.st_uid) mask |= pods(rel);
      if (mask) out.cgroups.push_back({{0, 0, st.st_ino}, mask});
    };
    visit(cgroup_root, "/");
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(cgroup_root, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
      visit(it->path(), "/" + fs::relative(it->path(), cgroup_root, ec).string());
    }
  }
  return out;
}

}  // namespace vigil::policy
