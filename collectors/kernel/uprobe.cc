#include "collectors/kernel/uprobe.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <sstream>

#include "base/fd.h"
#include "base/file.h"
#include "base/log.h"

namespace vigil {
namespace {

constexpr const char* kTracefs = "/sys/kernel/tracing";

Status write_uprobe_events(const std::string& line) {
  std::string path = fmt::format("{}/uprobe_events", kTracefs);
  Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (!fd) return os_error("open " + path);
  std::string l = line + "\n";
  if (::write(fd.get(), l.data(), l.size()) != static_cast<ssize_t>(l.size()))
    return os_error(fmt::format("write '{}' to {}", line, path));
  return {};
}

void remove_event(const std::string& group_event) {
  if (auto s = write_uprobe_events("-:" + group_event); !s) log::debug("{}", s.error().message);
}

}  // namespace

Status for_each_elf_function(const std::string& path,
                             const std::function<bool(std::string_view name, uint64_t file_offset)>& f) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return os_error("open " + path);
  elf_version(EV_CURRENT);
  Elf* elf = elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr);
  if (!elf || elf_kind(elf) != ELF_K_ELF) {
    if (elf) elf_end(elf);
    return Error{fmt::format("{} is not an ELF file", path)};
  }
  bool go_on = true;
  for (Elf64_Word type : {SHT_DYNSYM, SHT_SYMTAB}) {
    Elf_Scn* scn = nullptr;
    while (go_on && (scn = elf_nextscn(elf, scn)) != nullptr) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || sh.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      size_t n = sh.sh_size / sh.sh_entsize;
      for (size_t i = 0; go_on && i < n; ++i) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
        if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= SHN_LORESERVE || GELF_ST_TYPE(sym.st_info) != STT_FUNC)
          continue;
        const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (!name) continue;
        // The address's place in the file: through the section that holds it.
        GElf_Shdr code;
        Elf_Scn* in = elf_getscn(elf, sym.st_shndx);
        if (!in || !gelf_getshdr(in, &code) || sym.st_value < code.sh_addr) continue;
        go_on = f(name, sym.st_value - code.sh_addr + code.sh_offset);
      }
    }
  }
  elf_end(elf);
  return {};
}

Result<uint64_t> elf_function_offset(const std::string& path, std::string_view func) {
  uint64_t found = 0;
  bool have = false;
  auto st = for_each_elf_function(path, [&](std::string_view name, uint64_t off) {
    if (name != func) return true;
    found = off;
    have = true;
    return false;
  });
  if (!st) return st.error();
  if (!have) return Error{fmt::format("{} has no function {}", path, func)};
  return found;
}

UprobeLink& UprobeLink::operator=(UprobeLink&& o) noexcept {
  if (this != &o) {
    reset();
    link_ = std::move(o.link_);
    tracefs_event_ = std::move(o.tracefs_event_);
    o.tracefs_event_.clear();
  }
  return *this;
}

void UprobeLink::reset() {
  link_.reset();  // closes the perf event: the probe is free to remove
  if (!tracefs_event_.empty()) remove_event(tracefs_event_);
  tracefs_event_.clear();
}

LinkReaper::~LinkReaper() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LinkReaper::retire(std::vector<UprobeLink> links) {
  if (links.empty()) return;
  std::lock_guard lock(mu_);
  for (auto& l : links) queue_.push_back(std::move(l));
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  cv_.notify_one();
}

size_t LinkReaper::pending() const {
  std::lock_guard lock(mu_);
  return queue_.size() + busy_;
}

void LinkReaper::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything detached
    UprobeLink link = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    link.reset();
    lock.lock();
    --busy_;
  }
}

Result<UprobeLink> attach_uprobe_tracefs(bpf_program* prog, const std::string& binary, uint64_t file_offset,
                                         bool retprobe, uint64_t cookie) {
  if (binary.find_first_of(" \t\n") != std::string::npos)
    return Error{fmt::format("{}: tracefs uprobes cannot name a path with white space", binary)};
  static std::atomic<uint64_t> counter{0};
  std::string group = fmt::format("vigil_{}", getpid());
  std::string event = fmt::format("u{}", counter.fetch_add(1));
  std::string group_event = group + "/" + event;
  if (auto s = write_uprobe_events(fmt::format("{}:{} {}:0x{:x}", retprobe ? 'r' : 'p', group_event, binary, file_offset));
      !s)
    return s.error();
  struct Remove {  // the probe goes again on every way out but success
    std::string event;
    ~Remove() {
      if (!event.empty()) remove_event(event);
    }
  } guard{group_event};
  std::string id_path = fmt::format("{}/events/{}/id", kTracefs, group_event);
  std::string id_text = trim_right(read_small_file(id_path));
  if (id_text.empty() || !std::isdigit(static_cast<unsigned char>(id_text[0])))
    return Error{fmt::format("read {}: the new uprobe has no id", id_path)};
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.config = std::stoull(id_text);
  attr.sample_period = 1;
  attr.wakeup_events = 1;
  // Every process (pid -1): the program is attached to the probe, on every CPU.
  int pfd = static_cast<int>(::syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  if (pfd < 0) return os_error(fmt::format("perf_event_open of uprobe {} ({}:0x{:x})", group_event, binary, file_offset));
  LIBBPF_OPTS(bpf_perf_event_opts, pe, .bpf_cookie = cookie);
  bpf_link* link = bpf_program__attach_perf_event_opts(prog, pfd, &pe);
  if (!link) {
    int err = errno;
    ::close(pfd);
    return os_error(fmt::format("attach {} to uprobe {}", bpf_program__name(prog), group_event), err);
  }
  guard.event.clear();
  return UprobeLink(Link(link), group_event);  // the link closes pfd when destroyed
}

size_t remove_stale_tracefs_uprobes() {
  std::istringstream in(read_small_file(fmt::format("{}/uprobe_events", kTracefs)));
  size_t removed = 0;
  for (std::string line; std::getline(in, line);) {
    // "p:vigil_1234/u5 /usr/lib/x86_64-linux-gnu/libssl.so.3:0x..."
    if (line.size() < 3 || line[1] != ':') continue;
    std::string group_event = line.substr(2, line.find(' ') - 2);
    if (!group_event.starts_with("vigil_")) continue;
    size_t slash = group_event.find('/');
    if (slash == std::string::npos) continue;
    int pid = std::atoi(group_event.substr(6, slash - 6).c_str());
    if (pid <= 0 || pid == getpid()) continue;
    bool alive = ::kill(pid, 0) == 0 || errno == EPERM;
    if (alive && trim_right(read_small_file(fmt::format("/proc/{}/comm", pid))) == "vigild") continue;
    remove_event(group_event);
    ++removed;
  }
  return removed;
}

}  // namespace vigil
