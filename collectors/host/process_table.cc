#include "collectors/host/process_table.h"

#include <unistd.h>

#include <charconv>
#include <climits>

#include "base/file.h"

namespace vigil {
namespace {

std::string read_link(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return {};
  std::string s(buf, n);
  // The kernel marks unlinked executables; the path is still the useful part.
  constexpr std::string_view kDeleted = " (deleted)";
  if (s.size() > kDeleted.size() && s.ends_with(kDeleted)) s.resize(s.size() - kDeleted.size());
  return s;
}

uint32_t status_field(std::string_view status, std::string_view key) {
  size_t pos = status.find(key);
  if (pos == std::string_view::npos) return 0;
  pos += key.size();
  while (pos < status.size() && (status[pos] == ' ' || status[pos] == '\t')) ++pos;
  uint32_t v = 0;
  std::from_chars(status.data() + pos, status.data() + status.size(), v);
  return v;
}

std::string comm_of(const char* comm) { return std::string(comm, strnlen(comm, VIGIL_COMM_LEN)); }

}  // namespace

ProcessTable::ProcessTable(std::string proc_root, CgroupResolver* cgroups)
    : proc_root_(std::move(proc_root)), cgroups_(cgroups) {}

ProcessInfo* ProcessTable::load_from_proc(uint32_t pid) {
  std::string dir = proc_root_ + "/" + std::to_string(pid);
  std::string status = read_small_file(dir + "/status");
  if (status.empty()) return nullptr;
  ProcessInfo p;
  p.pid = pid;
  p.ppid = status_field(status, "\nPPid:");
  p.uid = status_field(status, "\nUid:");
  p.comm = read_small_file(dir + "/comm");
  while (!p.comm.empty() && p.comm.back() == '\n') p.comm.pop_back();
  p.exe = read_link(dir + "/exe");
  p.cgroup = parse_proc_cgroup_v2(read_small_file(dir + "/cgroup"));
  p.container = parse_container_ref(p.cgroup);
  auto [it, _] = procs_.insert_or_assign(pid, std::move(p));
  return &it->second;
}

size_t ProcessTable::seed() {
  size_t n = 0;
  for_each_numeric_entry(proc_root_, [&](uint32_t pid) { n += load_from_proc(pid) != nullptr; });
  return n;
}

void ProcessTable::set_cgroup(ProcessInfo& p, uint64_t cgroup_id, uint32_t pid) {
  if (cgroup_id == 0 || cgroup_id == p.cgroup_id) return;
  p.cgroup_id = cgroup_id;
  if (!cgroups_) return;
  std::string path = cgroups_->resolve(cgroup_id, pid);
  if (path.empty()) return;
  p.cgroup = std::move(path);
  p.container = parse_container_ref(p.cgroup);
}

void ProcessTable::on_exec(const vigil_exec_event& e) {
  ProcessInfo& p = procs_[e.hdr.pid];
  p.pid = e.hdr.pid;
  p.ppid = e.hdr.ppid;
  p.uid = e.hdr.uid;
  p.comm = comm_of(e.hdr.comm);
  // /proc/PID/exe is absolute and resolved; the execve argument may be relative.
  std::string exe = read_link(proc_root_ + "/" + std::to_string(e.hdr.pid) + "/exe");
  if (exe.empty())
    exe.assign(e.filename, std::min<size_t>(e.filename_len, VIGIL_FILENAME_LEN - 1));
  p.exe = std::move(exe);
  set_cgroup(p, e.hdr.cgroup_id, e.hdr.pid);
}

void ProcessTable::on_fork(const vigil_fork_event& e) {
  ProcessInfo child;
  if (const ProcessInfo* parent = find(e.hdr.pid)) child = *parent;
  child.pid = e.child_pid;
  child.ppid = e.hdr.pid;
  child.uid = e.hdr.uid;
  child.comm = comm_of(e.hdr.comm);
  if (child.exe.empty())
    child.exe = read_link(proc_root_ + "/" + std::to_string(e.child_pid) + "/exe");
  procs_.insert_or_assign(e.child_pid, std::move(child));
  purge(e.hdr.ts_ns);
}

void ProcessTable::on_exit(const vigil_exit_event& e, uint64_t linger_ns) {
  exited_.emplace_back(e.hdr.ts_ns + linger_ns, e.hdr.pid);
  purge(e.hdr.ts_ns);
}

void ProcessTable::purge(uint64_t now_ns) {
  while (!exited_.empty() && exited_.front().first <= now_ns) {
    procs_.erase(exited_.front().second);
    exited_.pop_front();
  }
}

const ProcessInfo* ProcessTable::find(uint32_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? nullptr : &it->second;
}

const ProcessInfo& ProcessTable::resolve(const vigil_event_header& hdr) {
  ProcessInfo* p = nullptr;
  if (auto it = procs_.find(hdr.pid); it != procs_.end()) p = &it->second;
  if (!p) p = load_from_proc(hdr.pid);
  if (!p) {
    // Gone before we could look: keep what the kernel told us.
    ProcessInfo& fresh = procs_[hdr.pid];
    fresh.pid = hdr.pid;
    fresh.ppid = hdr.ppid;
    fresh.uid = hdr.uid;
    fresh.comm = comm_of(hdr.comm);
    exited_.emplace_back(hdr.ts_ns + 5'000'000'000ull, hdr.pid);
    p = &fresh;
  }
  set_cgroup(*p, hdr.cgroup_id, hdr.pid);
  return *p;
}

}  // namespace vigil
