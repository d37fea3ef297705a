#include "collectors/kernel/observer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "base/caps.h"
#include "base/log.h"
#include "bpf/observe.skel.h"
#include "collectors/kernel/bpf_util.h"
#include "collectors/kernel/system.h"

namespace vigil {
namespace {

template <class T>
Result<KernelEvent> view_as(std::span<const std::byte> data) {
  if (data.size() < sizeof(T))
    return Error{fmt::format("decode event: record of {} bytes is shorter than its type ({} bytes)",
                             data.size(), sizeof(T))};
  return KernelEvent{reinterpret_cast<const T*>(data.data())};
}

// The tp_btf/raw_tp program pairs: exactly one of each is loaded.
using Progs = decltype(observe_bpf::progs);
struct ProgramPair {
  const char* tracepoint;
  bpf_program* Progs::*btf;
  bpf_program* Progs::*raw;
};

bool is_payload_program(std::string_view name) {
  for (std::string_view call : {"write", "sendto", "writev", "sendmsg", "sendmmsg", "sendfile64", "read",
                                "recvfrom", "readv", "recvmsg", "recvmmsg"}) {
    for (std::string_view prefix : {"tp__syscalls__sys_enter_", "tp__syscalls__sys_exit_"}) {
      if (name.size() == prefix.size() + call.size() && name.starts_with(prefix) &&
          name.ends_with(call))
        return true;
    }
  }
  return false;
}

}  // namespace

Result<KernelEvent> decode_kernel_event(std::span<const std::byte> data) {
  if (data.size() < sizeof(vigil_event_header))
    return Error{fmt::format("decode event: record of {} bytes has no header", data.size())};
  const auto* hdr = reinterpret_cast<const vigil_event_header*>(data.data());
  switch (hdr->type) {
    case VIGIL_EV_EXEC: return view_as<vigil_exec_event>(data);
    case VIGIL_EV_FORK: return view_as<vigil_fork_event>(data);
    case VIGIL_EV_EXIT: return view_as<vigil_exit_event>(data);
    case VIGIL_EV_CONN_OPEN:
    case VIGIL_EV_CONN_CLOSE: return view_as<vigil_conn_event>(data);
    case VIGIL_EV_DATA: {
      constexpr size_t kFixed = offsetof(vigil_data_event, data);
      if (data.size() < kFixed)
        return Error{fmt::format("decode event: data record of {} bytes has no header", data.size())};
      const auto* e = reinterpret_cast<const vigil_data_event*>(data.data());
      if (e->captured > VIGIL_MAX_CAPTURE || data.size() < kFixed + e->captured ||
          e->captured > e->length)
        return Error{fmt::format("decode event: data record of {} bytes claims {} captured bytes",
                                 data.size(), e->captured)};
      return KernelEvent{e};
    }
    default: return Error{fmt::format("decode event: unknown type {}", hdr->type)};
  }
}

Result<std::unique_ptr<Observer>> Observer::create(const ObserverOptions& options,
                                                   Handler handler) {
  std::unique_ptr<Observer> self(new Observer());
  self->handler_ = std::move(handler);

  self->skel_ = observe_bpf__open();
  if (!self->skel_) return os_error("open BPF object observe");
  auto* skel = self->skel_;
  if (auto s = check_abi_version("observe", skel->rodata->abi_version, VIGIL_ABI_VERSION); !s) return s.error();
  skel->rodata->self_pid = options.self_pid;
  if (options.capture_bytes > VIGIL_MAX_CAPTURE)
    return Error{fmt::format("capture of {} bytes per syscall exceeds the kernel's limit of {}",
                             options.capture_bytes, VIGIL_MAX_CAPTURE)};
  skel->rodata->capture_bytes = options.capture_bytes;
  skel->rodata->infer_l7 = options.infer_l7 ? 1 : 0;
  if (options.conn_uid_quota) skel->rodata->conn_uid_quota = options.conn_uid_quota;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return os_error("count possible CPUs", -ncpu);
  if (int err = bpf_map__set_max_entries(skel->maps.data_scratch, ncpu); err)
    return os_error("size payload scratch map", -err);
  if (int err = bpf_map__set_max_entries(skel->maps.events, options.ringbuf_bytes); err)
    return os_error(fmt::format("size ring buffer to {} bytes", options.ringbuf_bytes), -err);

  const ProgramPair pairs[] = {
      {"sched_process_exec", &Progs::tp_btf__sched__sched_process_exec,
       &Progs::raw_tp__sched__sched_process_exec},
      {"sched_process_fork", &Progs::tp_btf__sched__sched_process_fork,
       &Progs::raw_tp__sched__sched_process_fork},
      {"sched_process_exit", &Progs::tp_btf__sched__sched_process_exit,
       &Progs::raw_tp__sched__sched_process_exit},
  };
  std::vector<const char*> names;
  for (const auto& pair : pairs) names.push_back(pair.tracepoint);
  std::vector<bool> has_btf = kernel_has_btf_tracepoints(names);
  for (size_t i = 0; i < names.size(); ++i) {
    bpf_program__set_autoload(skel->progs.*pairs[i].btf, has_btf[i]);
    bpf_program__set_autoload(skel->progs.*pairs[i].raw, !has_btf[i]);
    if (!has_btf[i]) log::info("kernel has no BTF for {}: using raw_tp", names[i]);
  }

  // Payload programs hook every read/write-family syscall on the host: load
  // them only when payload capture is on. TLS uprobes need them too.
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) {
    std::string_view name = bpf_program__name(prog);
    if (is_payload_program(name)) bpf_program__set_autoload(prog, options.capture_bytes > 0);
    if (name.starts_with("uprobe__") || name.starts_with("uretprobe__"))
      bpf_program__set_autoload(prog, options.capture_bytes > 0 && options.tls);
  }

  if (int err = observe_bpf__load(skel); err)
    return os_error("load BPF object observe (verifier or permissions; run with --verbose)", -err);
  if (int err = observe_bpf__attach(skel); err)
    return os_error("attach observation programs (is tracefs mounted?)", -err);

  // The uprobe PMU wants CAP_SYS_ADMIN; without it tracefs's uprobe_events serves.
  self->uprobes_via_tracefs_ = !caps::has(caps::effective(), caps::kSysAdmin);
  if (self->uprobes_via_tracefs_ && options.tls && options.capture_bytes > 0)
    log::info("no CAP_SYS_ADMIN: TLS uprobes are defined in tracefs's uprobe_events");
  self->ring_ = ring_buffer__new(bpf_map__fd(skel->maps.events), &Observer::on_sample,
                                 self.get(), nullptr);
  if (!self->ring_) return os_error("open ring buffer of BPF object observe");
  return self;
}

Result<UprobeLink> Observer::attach_uprobe(std::string_view program, const std::string& binary,
                                           const std::string& func, uint64_t offset, uint64_t cookie) {
  bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, std::string(program).c_str());
  if (!prog || bpf_program__fd(prog) < 0) return Error{fmt::format("program {} is not loaded", program)};
  bool ret = std::string_view(bpf_program__section_name(prog)).starts_with("uretprobe");
  if (!uprobes_via_tracefs_) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie, .retprobe = ret);
    bpf_link* link = bpf_program__attach_uprobe_opts(prog, -1, binary.c_str(), offset, &opts);
    if (link) return UprobeLink(Link(link));
    if (errno != EACCES && errno != EPERM) return os_error(fmt::format("attach {} to {} in {}", program, func, binary));
    // Refused for another reason than the capability (an LSM, a lockdown): try tracefs.
    log::info("uprobe PMU refused ({}): TLS uprobes go through tracefs uprobe_events", std::strerror(errno));
    uprobes_via_tracefs_ = true;
  }
  auto link = attach_uprobe_tracefs(prog, binary, offset, ret, cookie);
  if (!link) return Error{fmt::format("attach {} to {} in {}: {}", program, func, binary, link.error().message)};
  return std::move(*link);
}

void Observer::set_tls_enabled(bool on) { skel_->bss->tls_enabled = on ? 1 : 0; }

size_t Observer::seed_connections(const std::vector<OpenSocket>& sockets) {
  int map = bpf_map__fd(skel_->maps.conns);
  int filter = bpf_map__fd(skel_->maps.conn_filter);
  size_t n = 0;
  for (const OpenSocket& s : sockets) {
    vigil_conn_key key{s.pid, s.fd};
    vigil_conn_value seed{};  // conn_id 0: a seed (bpf/observe/sock.bpf.h conn__adopt)
    seed.tuple.role = s.role;
    // The filter slot first, and sticky: the kernel's counting there may race
    // with this write, and a sticky slot stays looked up whatever it loses.
    uint32_t slot = vigil_conn_filter_slot(key.pid, key.fd), sticky = VIGIL_CONN_FILTER_STICKY;
    if (bpf_map_update_elem(filter, &slot, &sticky, BPF_ANY) != 0) continue;
    if (bpf_map_update_elem(map, &key, &seed, BPF_NOEXIST) != 0) continue;  // tracked already, or full
    seeds_.emplace(s.pid, s.fd);
    ++n;
  }
  return n;
}

void Observer::forget_seeds(uint32_t pid) {
  auto [first, last] = seeds_.equal_range(pid);
  if (first == last) return;
  int map = bpf_map__fd(skel_->maps.conns);
  for (auto it = first; it != last; ++it) {
    vigil_conn_key key{pid, it->second};
    vigil_conn_value val{};
    // A seed that became a connection left with the process's other sockets.
    if (bpf_map_lookup_elem(map, &key, &val) == 0 && val.conn_id == 0) bpf_map_delete_elem(map, &key);
  }
  seeds_.erase(first, last);
}

Observer::ConnFilterCheck Observer::check_conn_filter(const std::vector<std::pair<uint32_t, int32_t>>& fds) const {
  int map = bpf_map__fd(skel_->maps.conns), filter = bpf_map__fd(skel_->maps.conn_filter);
  ConnFilterCheck c;
  std::map<uint32_t, uint32_t> slots;  // slot -> its count
  for (auto [pid, fd] : fds) {
    uint32_t slot = vigil_conn_filter_slot(pid, fd), n = 0;
    (void)bpf_map_lookup_elem(filter, &slot, &n);
    slots[slot] = n;
    vigil_conn_key key{pid, fd};
    vigil_conn_value val{};
    if (bpf_map_lookup_elem(map, &key, &val) != 0) continue;
    ++c.tracked;
    if (n == 0) ++c.unfiltered;
  }
  for (auto [_, n] : slots) c.counted += n;
  vigil_conn_key key{}, next{};
  for (vigil_conn_key* prev = nullptr; bpf_map_get_next_key(map, prev, &next) == 0; prev = &key) {
    key = next;
    if (slots.count(vigil_conn_filter_slot(key.pid, key.fd))) ++c.expected;
  }
  return c;
}

Observer::~Observer() {
  if (ring_) ring_buffer__free(ring_);
  if (skel_) observe_bpf__destroy(skel_);
}

int Observer::on_sample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<Observer*>(ctx);
  auto ev = decode_kernel_event({static_cast<const std::byte*>(data), size});
  if (!ev) {
    ++self->malformed_;
    log::warn("{}", ev.error().message);
    return 0;
  }
  self->handler_(*ev);
  return 0;
}

Result<int> Observer::poll(int timeout_ms) {
  int n = ring_buffer__poll(ring_, timeout_ms);
  if (n == -EINTR) n = 0;
  if (n < 0) return os_error("poll ring buffer", -n);
  // Records are submitted without a wakeup until the ring fills (see
  // event__wakeup_flags in bpf/observe/ring.bpf.h): the timeout is the
  // delivery bound, so look anyway.
  int more = ring_buffer__consume(ring_);
  if (more < 0) return os_error("consume ring buffer", -more);
  return n + more;
}

int Observer::epoll_fd() const { return ring_buffer__epoll_fd(ring_); }

Result<int> Observer::consume() {
  int n = ring_buffer__consume(ring_);
  if (n < 0) return os_error("consume ring buffer", -n);
  return n;
}

std::array<uint64_t, VIGIL_LOST_SLOTS> Observer::lost_counters() const {
  return sum_percpu_slots<VIGIL_LOST_SLOTS>(bpf_map__fd(skel_->maps.lost));
}

std::vector<ProgramStatus> Observer::programs() const {
  std::vector<ProgramStatus> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (!bpf_program__autoload(prog)) continue;
    std::string_view pname = bpf_program__name(prog);
    if (pname.starts_with("uprobe__") || pname.starts_with("uretprobe__")) continue;  // per library: TlsManager
    ProgramStatus st;
    st.name = bpf_program__name(prog);
    int fd = bpf_program__fd(prog);
    if (fd >= 0) {
      bpf_prog_info info{};
      uint32_t len = sizeof(info);
      if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) st.id = info.id;
    }
    // The skeleton keeps one link per program in declaration order.
    for (int i = 0; i < skel_->skeleton->prog_cnt; ++i) {
      if (*skel_->skeleton->progs[i].prog == prog) st.attached = *skel_->skeleton->progs[i].link;
    }
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace vigil
