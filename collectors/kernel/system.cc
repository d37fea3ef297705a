#include "collectors/kernel/system.h"

#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstdarg>

#include "base/log.h"

namespace vigil {
namespace {

bool g_libbpf_verbose = false;

Status mount_if_missing(const char* target, const char* fstype, long magic, const char* options) {
  struct statfs fs {};
  if (statfs(target, &fs) == 0 && static_cast<long>(fs.f_type) == magic) return {};
  if (mkdir(target, 0755) != 0 && errno != EEXIST)
    return os_error(fmt::format("create mount point {}", target));
  if (mount(fstype, target, fstype, 0, options) != 0)
    return os_error(fmt::format("{} is not mounted at {} and mounting it failed (it needs CAP_SYS_ADMIN: mount "
                                "it before starting vigild, or mount it into its container)", fstype, target));
  log::info("mounted {} at {}", fstype, target);
  return {};
}

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG && !g_libbpf_verbose) return 0;
  // Verifier logs arrive as one message of many KiB: never cut them.
  char small[1024];
  va_list again;
  va_copy(again, args);
  int n = std::vsnprintf(small, sizeof(small), format, args);
  std::string big;
  std::string_view msg(small, n < 0 ? 0 : std::min<size_t>(n, sizeof(small) - 1));
  if (n >= static_cast<int>(sizeof(small))) {
    big.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(big.data(), big.size(), format, again);
    msg = std::string_view(big.data(), static_cast<size_t>(n));
  }
  va_end(again);
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  if (level == LIBBPF_WARN)
    log::warn("libbpf: {}", msg);
  else
    log::debug("libbpf: {}", msg);
  return 0;
}

}  // namespace

Status mount_bpffs(const std::string& target) {
  // Root only, as systemd mounts it: bpffs's default root is 1777, where any user
  // can make the agent's pin directory first (security review F8).
  return mount_if_missing(target.c_str(), "bpf", BPF_FS_MAGIC, "mode=0700");
}

Status ensure_kernel_mounts() {
  if (auto s = mount_if_missing("/sys/kernel/tracing", "tracefs", TRACEFS_MAGIC, nullptr); !s) return s;
  return mount_bpffs("/sys/fs/bpf");
}

Status raise_memlock_limit() {
  struct rlimit lim {};
  if (getrlimit(RLIMIT_MEMLOCK, &lim) == 0 && lim.rlim_cur == RLIM_INFINITY) return {};
  lim = {RLIM_INFINITY, RLIM_INFINITY};
  if (setrlimit(RLIMIT_MEMLOCK, &lim) != 0)
    return os_error("raise RLIMIT_MEMLOCK (only kernels before 5.11 need it)");
  return {};
}

void route_libbpf_logs(bool verbose) {
  g_libbpf_verbose = verbose;
  libbpf_set_print(libbpf_print);
}

std::vector<bool> kernel_has_btf_tracepoints(const std::vector<const char*>& tracepoints) {
  std::vector<bool> found(tracepoints.size(), false);
  struct btf* btf = btf__load_vmlinux_btf();
  if (!btf) return found;
  for (size_t i = 0; i < tracepoints.size(); ++i) {
    std::string name = fmt::format("btf_trace_{}", tracepoints[i]);
    found[i] = btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_TYPEDEF) >= 0;
  }
  btf__free(btf);
  return found;
}

}  // namespace vigil
