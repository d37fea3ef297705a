#include "collectors/tls/tls_manager.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/file.h"
#include "base/log.h"
#include "collectors/kernel/observer.h"

namespace vigil {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kFullScanNs = 5'000'000'000ull;

// uprobe program, symbol, and whether the symbol must exist for the pair.
struct Probe {
  const char* program;
  const char* symbol;
};
constexpr Probe kReadProbes[] = {{"uprobe__ssl_read", "SSL_read"}, {"uretprobe__ssl_read", "SSL_read"}};
constexpr Probe kReadExProbes[] = {{"uprobe__ssl_read_ex", "SSL_read_ex"},
                                   {"uretprobe__ssl_read_ex", "SSL_read_ex"}};
constexpr Probe kWriteProbe = {"uprobe__ssl_write", "SSL_write"};
constexpr Probe kWriteExProbe = {"uprobe__ssl_write_ex", "SSL_write_ex"};
// Copies linked into an executable (Node.js) run TLS over memory BIOs: no socket
// write inside SSL_write confirms it, so its return is probed instead.
constexpr Probe kWriteRetProbe = {"uretprobe__ssl_write", "SSL_write"};
constexpr Probe kWriteExRetProbe = {"uretprobe__ssl_write_ex", "SSL_write_ex"};

// A file worth opening: a libssl or libgnutls, or a process's executable (static
// copies, Go).
bool candidate(const std::string& path, const std::string& exe) {
  std::string base = fs::path(path).filename().string();
  return base.starts_with("libssl") || base.starts_with("libgnutls") || path == exe;
}

// The (dev, ino) key /proc/PID/maps would show for a file.
std::pair<uint64_t, uint64_t> inode_of(const struct stat& st) {
  return {(static_cast<uint64_t>(major(st.st_dev)) << 32) | minor(st.st_dev), st.st_ino};
}

}  // namespace

Result<TlsIdentity> identify_tls_library(const std::string& path) {
  auto go = inspect_go_binary(path);
  if (!go) return go.error();
  if (*go) {
    TlsIdentity id;
    id.kind = "go";
    id.go = std::move(**go);
    return id;
  }
  std::map<std::string, uint64_t, std::less<>> found;  // the first of a name: the dynamic table's
  static const std::set<std::string, std::less<>> kWanted = {
      "SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex", "SSL_CTX_set_strict_cipher_list",
      "SSL_get1_peer_certificate", "gnutls_record_send", "gnutls_record_send2", "gnutls_record_recv",
      "gnutls_record_recv_seq"};
  auto st = for_each_elf_function(path, [&](std::string_view name, uint64_t offset) {
    if (auto it = kWanted.find(name); it != kWanted.end()) found.emplace(*it, offset);
    return found.size() < kWanted.size();
  });
  if (!st) return st.error();
  TlsIdentity id;
  if (found.count("gnutls_record_recv") && (found.count("gnutls_record_send") || found.count("gnutls_record_send2"))) {
    id.kind = "gnutls";
    for (const char* f : {"gnutls_record_send", "gnutls_record_send2", "gnutls_record_recv", "gnutls_record_recv_seq"})
      if (auto it = found.find(f); it != found.end()) id.offsets.emplace(it->first, it->second);
    return id;
  }
  for (const char* f : {"SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"})
    if (auto it = found.find(f); it != found.end()) id.offsets.emplace(it->first, it->second);
  id.read = found.count("SSL_read");
  id.write = found.count("SSL_write");
  id.read_ex = found.count("SSL_read_ex");
  id.write_ex = found.count("SSL_write_ex");
  if (!id.read && !id.write) return id;
  // Told apart by what each line of the API added, not by file names.
  if (found.count("SSL_CTX_set_strict_cipher_list")) id.kind = "boringssl";
  else if (found.count("SSL_get1_peer_certificate")) id.kind = "openssl-3";
  else if (id.read_ex) id.kind = "openssl-1.1";
  else id.kind = "openssl";
  return id;
}

TlsManager::TlsManager(Observer& observer, std::string proc_root, TlsLimits limits)
    : observer_(observer), proc_root_(std::move(proc_root)), limits_(limits) {
  if (size_t n = remove_stale_tracefs_uprobes())
    log::info("removed {} tracefs uprobes left by a vigild that is gone", n);
}

TlsManager::~TlsManager() {
  for (auto& [_, lib] : libs_) detach(lib);
}

namespace {

// One uprobe to attach: program, what it is shown as, where, with which cookie.
struct Site {
  const char* program;
  std::string label;
  uint64_t offset, cookie;
};

std::vector<Site> sites_of(const TlsIdentity& id, uint8_t lib, bool in_executable) {
  std::vector<Site> out;
  if (id.go) {
    const GoTlsBinary& g = *id.go;
    uint64_t cookie = go_tls_cookie(lib, g.conn);
    out.push_back({"uprobe__go_tls_write", "crypto/tls.(*Conn).Write", g.write_offset, cookie});
    out.push_back({"uprobe__go_tls_read", "crypto/tls.(*Conn).Read", g.read_offset, cookie});
    for (uint64_t at : g.read_returns)
      out.push_back({"uprobe__go_tls_read_ret", "crypto/tls.(*Conn).Read (return)", at, cookie});
    return out;
  }
  if (id.kind == "gnutls") {
    // The same entry/syscall/return scheme as SSL_read/SSL_write: (session, data,
    // size) are the first three arguments. gnutls_record_send jumps to
    // gnutls_record_send2: probing the latter sees both once.
    const char* send = id.offsets.count("gnutls_record_send2") ? "gnutls_record_send2" : "gnutls_record_send";
    out.push_back({"uprobe__ssl_write", send, id.offsets.at(send), lib});
    for (const char* recv : {"gnutls_record_recv", "gnutls_record_recv_seq"}) {
      auto it = id.offsets.find(recv);
      if (it == id.offsets.end()) continue;
      out.push_back({"uprobe__ssl_read", recv, it->second, lib});
      out.push_back({"uretprobe__ssl_read", fmt::format("{} (return)", recv), it->second, lib});
    }
    return out;
  }
  std::vector<Probe> probes;
  if (id.write) probes.push_back(kWriteProbe);
  if (id.write_ex) probes.push_back(kWriteExProbe);
  if (in_executable && id.write) probes.push_back(kWriteRetProbe);
  if (in_executable && id.write_ex) probes.push_back(kWriteExRetProbe);
  if (id.read) probes.insert(probes.end(), std::begin(kReadProbes), std::end(kReadProbes));
  if (id.read_ex) probes.insert(probes.end(), std::begin(kReadExProbes), std::end(kReadExProbes));
  for (const Probe& p : probes)
    out.push_back({p.program,
                   fmt::format("{}{}", p.symbol, std::string_view(p.program).starts_with("uret") ? " (return)" : ""),
                   id.offsets.at(p.symbol), lib});
  return out;
}

}  // namespace

void TlsManager::attach(Library& lib, const std::string& path, const TlsIdentity& id, bool in_executable) {
  std::vector<std::pair<std::string, size_t>> labels;
  for (const Site& s : sites_of(id, lib.st.id, in_executable)) {
    auto link = observer_.attach_uprobe(s.program, path, s.label, s.offset, s.cookie);
    if (!link) {
      lib.st.error = link.error().message;
      log::warn("TLS library {}: {} (tried again through the next process that maps it)", lib.st.path,
                lib.st.error);
      detach(lib);
      return;
    }
    lib.links.push_back(std::move(*link));
    // Repeated sites (Read's returns) shown once, with their count.
    if (!labels.empty() && labels.back().first == s.label) ++labels.back().second;
    else labels.emplace_back(s.label, 1);
  }
  for (const auto& [label, n] : labels) lib.st.probes.push_back(n == 1 ? label : fmt::format("{} ×{}", label, n));
  observer_.set_tls_enabled(true);
}

void TlsManager::detach(Library& lib) {
  reaper_.retire(std::move(lib.links));  // destroying a link detaches its probe: off the loop
  lib.links.clear();
  lib.st.probes.clear();
}

void TlsManager::scan_pid(uint32_t pid, std::set<Inode>* seen) {
  fs::path dir = fs::path(proc_root_) / std::to_string(pid);
  std::error_code ec;
  std::string exe = fs::read_symlink(dir / "exe", ec).string();
  std::ifstream maps(dir / "maps");
  std::string line;
  std::set<Inode> here;
  while (std::getline(maps, line)) {
    // addr perms offset dev inode path
    std::istringstream in(line);
    std::string addr, perms, offset, dev, inode_s, path;
    if (!(in >> addr >> perms >> offset >> dev >> inode_s)) continue;
    std::getline(in >> std::ws, path);
    if (path.empty() || path[0] != '/' || perms.size() < 3 || perms[2] != 'x') continue;
    // Deleted (or a memfd): no path reaches it; the exec-time fd did, if anything.
    if (path.ends_with(" (deleted)")) continue;
    if (!candidate(path, exe)) continue;
    unsigned maj = 0, min = 0;
    if (std::sscanf(dev.c_str(), "%x:%x", &maj, &min) != 2) continue;
    Inode key{(static_cast<uint64_t>(maj) << 32) | min, std::strtoull(inode_s.c_str(), nullptr, 10)};
    if (!here.insert(key).second || rejected_.count(key)) continue;
    if (Library* known = find(key)) {
      known->pids.insert(pid);
      continue;
    }
    if (failed_this_round(key)) continue;
    // Through the process's root: the library may live in another mount namespace.
    std::string open_path = (dir / "root").string() + path;
    auto fd = open_mapped(open_path, key);
    if (!fd) {
      // Not the file the process maps (a path swapped since), or unreadable now:
      // not a verdict on the inode; the next process that maps it is another chance.
      note_failed(key, path, fd.error().message);
      continue;
    }
    if (Library* lib = add(key, path, fd->get(), path == exe)) lib->pids.insert(pid);
  }
  if (seen) seen->insert(here.begin(), here.end());
}

Result<Fd> TlsManager::open_mapped(const std::string& open_path, const Inode& key) {
  // O_NONBLOCK: a FIFO planted at the path must not stall the loop.
  Fd fd(::open(open_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) return os_error("open " + open_path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return os_error("stat " + open_path);
  if (!S_ISREG(st.st_mode) || inode_of(st) != key)
    return Error{fmt::format("{} is not the file the process maps (replaced since?)", open_path)};
  return fd;
}

TlsManager::Library* TlsManager::find(const Inode& key) {
  auto it = libs_.find(key);
  return it == libs_.end() ? nullptr : &it->second;
}

bool TlsManager::failed_this_round(const Inode& key) const {
  auto f = failed_.find(key);
  return f != failed_.end() && f->second.round == round_;
}

void TlsManager::note_failed(const Inode& key, const std::string& path, std::string why) {
  failed_[key] = {TlsLibraryStatus{0, path, "", "", {}, 0, std::move(why)}, round_};
}

void TlsManager::reject(const Inode& key, TlsLibraryStatus st) {
  if (rejected_.size() >= limits_.max_rejected && !rejected_order_.empty()) {
    rejected_.erase(rejected_order_.front());
    rejected_order_.pop_front();
  }
  if (rejected_.emplace(key, std::move(st)).second) rejected_order_.push_back(key);
  ++rejected_total_;
}

TlsManager::Library* TlsManager::add(const Inode& key, const std::string& path, int fd, bool in_executable) {
  if (Library* known = find(key)) return known;
  if (rejected_.count(key) || failed_this_round(key)) return nullptr;
  // Attaching blocks the loop (an RCU grace period per probe): past this tick's
  // budget the file waits for the next look (F5).
  if (attach_spent_ns_ >= limits_.attach_budget_ns) {
    ++deferred_;
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return nullptr;
  // A user's own files count against that user: one user cannot take every probe (F5).
  if (st.st_uid != 0 && !make_room_for(st.st_uid)) {
    note_failed(key, path, fmt::format("owner uid {} has {} files probed and in use already (the limit)",
                                       st.st_uid, limits_.max_per_owner));
    return nullptr;
  }
  auto started = std::chrono::steady_clock::now();
  // Read and attached through this fd only: the path may name another file by now (F1).
  std::string fd_path = fmt::format("/proc/self/fd/{}", fd);
  auto id = identify_tls_library(fd_path);
  if (!id) {
    note_failed(key, path, id.error().message);
    return nullptr;
  }
  if (id->kind.empty()) {
    reject(key, TlsLibraryStatus{0, path, "", "", {}, 0, "no SSL_read/SSL_write"});
    return nullptr;
  }
  if (id->go && !id->go->error.empty()) {
    log::warn("Go executable {} ({}): TLS not probed: {}", path, id->go->version, id->go->error);
    reject(key, TlsLibraryStatus{0, path, id->kind, id->go->version, {}, 0, id->go->error});
    return nullptr;
  }
  Library lib;
  lib.owner = st.st_uid;
  lib.st.id = next_id_;
  next_id_ = next_id_ == 255 ? 1 : next_id_ + 1;
  lib.st.path = path;
  lib.st.kind = id->kind;
  if (id->go) lib.st.version = id->go->version;
  names_[lib.st.id] = id->kind;
  Library& added = libs_.emplace(key, std::move(lib)).first->second;
  attach(added, fd_path, *id, in_executable);
  auto spent = std::chrono::steady_clock::now() - started;
  attach_spent_ns_ += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(spent).count());
  if (added.links.empty()) {  // not attached: remembered as failed, tried again later
    failed_[key] = {added.st, round_};
    libs_.erase(key);
    return nullptr;
  }
  // The time from opening the file: what a new program's first request races.
  auto ms = std::chrono::duration<double, std::milli>(spent).count();
  log::info("TLS library {} ({}{}): {} probes attached in {:.1f} ms", added.st.path, added.st.kind,
            added.st.version.empty() ? "" : " " + added.st.version, added.links.size(), ms);
  failed_.erase(key);
  return &libs_.at(key);
}

const std::vector<std::string> TlsManager::kHostLibraryGlobs = {
    "/usr/lib/x86_64-linux-gnu/libssl.so.*", "/usr/lib/x86_64-linux-gnu/*/libssl.so.*",
    "/lib/x86_64-linux-gnu/libssl.so.*",     "/usr/lib64/libssl.so.*",
    "/usr/lib/libssl.so.*",                  "/usr/local/lib/libssl.so.*",
    "/usr/lib/x86_64-linux-gnu/libgnutls.so.*", "/lib/x86_64-linux-gnu/libgnutls.so.*",
};

void TlsManager::attach_host_libraries(const std::vector<std::string>& globs) {
  for (const auto& g : globs) {
    glob_t gl{};
    if (glob(g.c_str(), 0, nullptr, &gl) == 0) {
      for (size_t i = 0; i < gl.gl_pathc; ++i) {
        struct stat st {};
        if (stat(gl.gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode)) continue;
        auto fd = open_mapped(gl.gl_pathv[i], inode_of(st));
        if (!fd) continue;
        if (Library* lib = add(inode_of(st), gl.gl_pathv[i], fd->get(), false)) lib->host = true;
      }
    }
    globfree(&gl);
  }
}

void TlsManager::scan_all() {
  ++round_;
  std::set<Inode> seen;
  for (auto& [_, lib] : libs_) lib.pids.clear();
  for_each_numeric_entry(proc_root_, [&](uint32_t pid) { scan_pid(pid, &seen); });
  // A file that failed while no process maps it any more is forgotten (a build
  // or a container's short-lived tools would otherwise pile up here).
  std::erase_if(failed_, [&](const auto& f) { return f.second.round != round_ && !seen.count(f.first); });
  // The last process mapping a library has been gone for kLingerNs: so are its probes.
  for (auto it = libs_.begin(); it != libs_.end();) {
    Library& lib = it->second;
    if (!lib.pids.empty() || lib.host) {
      lib.unused = false;
      ++it;
    } else if (!lib.unused) {
      lib.unused = true;
      lib.unused_since = now_ns_;
      ++it;
    } else if (now_ns_ - lib.unused_since >= kLingerNs) {
      log::info("TLS library {} unused: probes detached", lib.st.path);
      detach(lib);
      it = libs_.erase(it);
    } else {
      ++it;
    }
  }
}

void TlsManager::on_exec(uint32_t pid, uint64_t now_ns) {
  std::string dir = fmt::format("{}/{}", proc_root_, pid);
  Fd fd(::open((dir + "/exe").c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  struct stat st {};
  if (fd && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode)) {
    Inode key = inode_of(st);
    if (Library* known = find(key)) {
      known->pids.insert(pid);
    } else if (!rejected_.count(key)) {
      // A new executable is looked at now, through the fd (the process may be gone
      // already): a Go or Node program's first request follows its start within
      // milliseconds.
      std::error_code ec;
      std::string path = fs::read_symlink(dir + "/exe", ec).string();
      if (!path.empty())
        if (Library* lib = add(key, path, fd.get(), true)) lib->pids.insert(pid);
    }
  }
  due_.emplace(now_ns, pid);  // the next tick: the libraries it maps
  due_.emplace(now_ns + 1'000'000'000ull, pid);
}

bool TlsManager::make_room_for(uint32_t uid) {
  size_t owned = 0;
  auto idle = libs_.end();
  for (auto it = libs_.begin(); it != libs_.end(); ++it) {
    const Library& l = it->second;
    if (l.owner != uid) continue;
    ++owned;
    if (l.pids.empty() && !l.host && (idle == libs_.end() || l.unused_since < idle->second.unused_since)) idle = it;
  }
  if (owned < limits_.max_per_owner) return true;
  if (idle == libs_.end()) return false;
  log::info("TLS library {} unused: probes detached (its owner uid {} is at the limit of {})", idle->second.st.path,
            uid, limits_.max_per_owner);
  detach(idle->second);
  libs_.erase(idle);
  return true;
}

void TlsManager::tick(uint64_t now_ns) {
  now_ns_ = now_ns;
  attach_spent_ns_ = 0;
  if (now_ns - last_full_ns_ >= kFullScanNs) {
    last_full_ns_ = now_ns;
    due_.clear();
    scan_all();
    return;
  }
  ++round_;
  while (!due_.empty() && due_.begin()->first <= now_ns) {
    uint32_t pid = due_.begin()->second;
    due_.erase(due_.begin());
    scan_pid(pid, nullptr);
  }
}

std::string TlsManager::lib_name(uint8_t id) const {
  auto it = names_.find(id);
  return it == names_.end() ? std::string() : it->second;
}

std::vector<TlsLibraryStatus> TlsManager::status() const {
  std::vector<TlsLibraryStatus> out;
  for (const auto& [_, lib] : libs_) {
    TlsLibraryStatus s = lib.st;
    s.processes = lib.pids.size();
    out.push_back(std::move(s));
  }
  for (const auto& [key, f] : failed_)
    if (!libs_.count(key)) out.push_back(f.st);
  for (const auto& [_, r] : rejected_)
    if (!r.kind.empty()) out.push_back(r);  // a TLS library that cannot be probed
  return out;
}

}  // namespace vigil
