#include "egress.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "base/log.h"
#include "egress.skel.h"

namespace vigil {
namespace fs = std::filesystem;
namespace {

std::string version_dir() { return fmt::format("egress-v{}", VIGIL_EGRESS_ABI_VERSION); }

bool is_internal_map(const bpf_map* m) { return std::string_view(bpf_map__name(m)).find('.') != std::string_view::npos; }

// Deletes every key of `fd` for which `in_gen` holds.
template <class Key, class Pred>
Status delete_keys(int fd, std::string_view map_name, Pred in_gen) {
  std::vector<Key> doomed;
  Key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (in_gen(next)) doomed.push_back(next);
    key = next;
    prev = &key;
  }
  for (const Key& k : doomed)
    if (bpf_map_delete_elem(fd, &k) && errno != ENOENT) return os_error(fmt::format("clear map {}", map_name));
  return {};
}

template <class Key, class Value>
Status put(int fd, std::string_view map_name, const Key& k, const Value& v) {
  if (bpf_map_update_elem(fd, &k, &v, BPF_ANY)) return os_error(fmt::format("write map {}", map_name));
  return {};
}

Status remove_dir_pins(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (unlink(entry.path().c_str()) && errno != ENOENT) return os_error(fmt::format("unpin {}", entry.path().string()));
  if (rmdir(dir.c_str()) && errno != ENOENT) return os_error(fmt::format("remove {}", dir.string()));
  return {};
}

}  // namespace

uint32_t kernel_dev(uint64_t st_dev) {
  return static_cast<uint32_t>((major(st_dev) << 20) | minor(st_dev));
}

bool Enforcer::pinned_state_exists(const std::string& pin_root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(pin_root, ec))
    if (entry.path().filename().string().starts_with("egress-v")) return true;
  return false;
}

Status Enforcer::remove_pinned_state(const std::string& pin_root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(pin_root, ec)) {
    if (!entry.path().filename().string().starts_with("egress-v")) continue;
    // Stop judging first, so nothing is refused while links are being removed.
    int fd = bpf_obj_get((entry.path() / "eg_state").c_str());
    if (fd >= 0) {
      uint32_t zero = 0;
      vigil_eg_state st{};
      bpf_map_update_elem(fd, &zero, &st, BPF_ANY);
      close(fd);
    }
    if (auto s = remove_dir_pins(entry.path()); !s) return s;
  }
  rmdir(pin_root.c_str());  // when empty
  return {};
}

Result<std::unique_ptr<Enforcer>> Enforcer::open(const EgressOptions& options, Handler handler) {
  std::unique_ptr<Enforcer> self(new Enforcer());
  self->handler_ = std::move(handler);
  self->pin_dir_ = (fs::path(options.pin_root) / version_dir()).string();
  std::error_code ec;
  fs::create_directories(self->pin_dir_, ec);
  if (ec) return Error{fmt::format("create pin directory {}: {} (is bpffs mounted?)", self->pin_dir_, ec.message())};
  self->adopted_ = fs::exists(fs::path(self->pin_dir_) / "eg_state");

  self->skel_ = egress_bpf__open();
  if (!self->skel_) return os_error("open BPF object egress");
  auto* skel = self->skel_;
  if (skel->rodata->egress_abi_version != VIGIL_EGRESS_ABI_VERSION)
    return Error{fmt::format("BPF object egress has ABI version {}, the agent expects {}",
                             skel->rodata->egress_abi_version, VIGIL_EGRESS_ABI_VERSION)};
  bpf_map* map;
  bpf_object__for_each_map(map, skel->obj) {
    if (is_internal_map(map)) continue;
    std::string path = (fs::path(self->pin_dir_) / bpf_map__name(map)).string();
    if (int err = bpf_map__set_pin_path(map, path.c_str()); err) return os_error("set pin path " + path, -err);
  }
  if (int err = egress_bpf__load(skel); err)
    return os_error(fmt::format("load BPF object egress (pinned maps in {} may be from another build: "
                                "`vigil policy disable` removes them)",
                                self->pin_dir_),
                    -err);

  int cg = ::open(options.cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) return os_error("open cgroup v2 root " + options.cgroup_root);
  bpf_program* prog;
  Status attach_status;
  bpf_object__for_each_program(prog, skel->obj) {
    std::string path = (fs::path(self->pin_dir_) / fmt::format("link_{}", bpf_program__name(prog))).string();
    bpf_link* link = nullptr;
    if (fs::exists(path)) {
      // An earlier agent's link: switch it to our program in one step.
      link = bpf_link__open(path.c_str());
      if (!link) {
        attach_status = os_error("open pinned link " + path);
        break;
      }
      if (int err = bpf_link__update_program(link, prog); err) {
        bpf_link__destroy(link);
        attach_status = os_error("switch pinned link " + path + " to the new program", -err);
        break;
      }
    } else {
      link = bpf_program__attach_cgroup(prog, cg);
      if (!link) {
        attach_status = os_error(fmt::format("attach {} to {}", bpf_program__name(prog), options.cgroup_root));
        break;
      }
      if (int err = bpf_link__pin(link, path.c_str()); err) {
        bpf_link__destroy(link);
        attach_status = os_error("pin link " + path, -err);
        break;
      }
    }
    self->links_.push_back(link);
  }
  ::close(cg);
  if (!attach_status) return attach_status.error();

  // Pins of other layouts: ours now enforce, so theirs can go.
  for (const auto& entry : fs::directory_iterator(options.pin_root, ec)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with("egress-v") && name != version_dir()) {
      log::info("removing egress pins of another version: {}", entry.path().string());
      if (auto s = remove_dir_pins(entry.path()); !s) log::warn("{}", s.error().message);
    }
  }

  uint32_t zero = 0;
  int state_fd = bpf_map__fd(skel->maps.eg_state);
  vigil_eg_state st{};
  bpf_map_lookup_elem(state_fd, &zero, &st);
  self->gen_ = st.active_gen & 1;
  st.enabled = 1;
  st.dns_min_ttl_s = options.dns_min_ttl_s;
  if (auto s = put(state_fd, "eg_state", zero, st); !s) return s.error();

  int ports_fd = bpf_map__fd(skel->maps.eg_dns_ports);
  if (auto s = delete_keys<uint16_t>(ports_fd, "eg_dns_ports", [](uint16_t) { return true; }); !s) return s.error();
  for (uint16_t port : options.dns_ports)
    if (auto s = put(ports_fd, "eg_dns_ports", port, uint8_t{1}); !s) return s.error();

  self->ring_ = ring_buffer__new(bpf_map__fd(skel->maps.eg_events), &Enforcer::on_sample, self.get(), nullptr);
  if (!self->ring_) return os_error("open ring buffer of BPF object egress");
  return self;
}

Enforcer::~Enforcer() {
  if (ring_) ring_buffer__free(ring_);
  for (bpf_link* l : links_) {
    if (!disabled_) bpf_link__disconnect(l);  // pinned: keeps enforcing after we exit
    bpf_link__destroy(l);
  }
  if (skel_) egress_bpf__destroy(skel_);
}

Status Enforcer::clear_generation(uint32_t gen) {
  auto* m = &skel_->maps;
  if (auto s = delete_keys<vigil_eg_bin_key>(bpf_map__fd(m->eg_bins), "eg_bins",
                                             [&](const vigil_eg_bin_key& k) { return k.gen == gen; });
      !s)
    return s;
  if (auto s = delete_keys<vigil_eg_cgroup_key>(bpf_map__fd(m->eg_cgroups), "eg_cgroups",
                                                [&](const vigil_eg_cgroup_key& k) { return k.gen == gen; });
      !s)
    return s;
  if (auto s = delete_keys<vigil_eg_uid_key>(bpf_map__fd(m->eg_uids), "eg_uids",
                                             [&](const vigil_eg_uid_key& k) { return k.gen == gen; });
      !s)
    return s;
  if (auto s = delete_keys<vigil_eg_cidr_key>(bpf_map__fd(m->eg_cidrs), "eg_cidrs",
                                              [&](const vigil_eg_cidr_key& k) { return k.gen == gen; });
      !s)
    return s;
  if (auto s = delete_keys<vigil_eg_fqdn_key>(bpf_map__fd(m->eg_fqdns), "eg_fqdns",
                                              [&](const vigil_eg_fqdn_key& k) { return k.gen == gen; });
      !s)
    return s;
  if (auto s = delete_keys<vigil_eg_fqdn_ports_key>(bpf_map__fd(m->eg_fqdn_ports), "eg_fqdn_ports",
                                                    [&](const vigil_eg_fqdn_ports_key& k) { return k.gen == gen; });
      !s)
    return s;
  vigil_eg_gen empty{};
  return put(bpf_map__fd(m->eg_gens), "eg_gens", gen, empty);
}

Status Enforcer::apply(EgressTables t) {
  if (disabled_) return Error{"egress enforcement is disabled"};
  uint32_t next = gen_ ^ 1;
  // A failure before the flip leaves the active generation untouched.
  if (auto s = clear_generation(next); !s) return s;
  auto* m = &skel_->maps;
  for (auto [k, v] : t.selectors.bins) {
    k.gen = next;
    if (auto s = put(bpf_map__fd(m->eg_bins), "eg_bins", k, v); !s) return s;
  }
  for (auto [k, v] : t.selectors.cgroups) {
    k.gen = next;
    if (auto s = put(bpf_map__fd(m->eg_cgroups), "eg_cgroups", k, v); !s) return s;
  }
  for (auto [k, v] : t.selectors.uids) {
    k.gen = next;
    if (auto s = put(bpf_map__fd(m->eg_uids), "eg_uids", k, v); !s) return s;
  }
  for (auto [k, v] : t.cidrs) {
    k.gen = static_cast<uint8_t>(next);
    if (auto s = put(bpf_map__fd(m->eg_cidrs), "eg_cidrs", k, v); !s) return s;
  }
  for (auto [hash, mask] : t.fqdns) {
    vigil_eg_fqdn_key k{next, 0, hash};
    if (auto s = put(bpf_map__fd(m->eg_fqdns), "eg_fqdns", k, mask); !s) return s;
  }
  for (auto [k, v] : t.fqdn_ports) {
    k.gen = next;
    if (auto s = put(bpf_map__fd(m->eg_fqdn_ports), "eg_fqdn_ports", k, v); !s) return s;
  }
  if (auto s = put(bpf_map__fd(m->eg_gens), "eg_gens", next, t.gen); !s) return s;

  uint32_t zero = 0;
  int state_fd = bpf_map__fd(m->eg_state);
  vigil_eg_state st{};
  if (bpf_map_lookup_elem(state_fd, &zero, &st)) return os_error("read map eg_state");
  st.active_gen = next;
  st.enabled = 1;
  if (auto s = put(state_fd, "eg_state", zero, st); !s) return s;
  uint32_t old = gen_;
  gen_ = next;
  // Programs that read the old generation just before the flip finish within
  // their RCU section; give them that before emptying it.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return clear_generation(old);
}

Status Enforcer::disable() {
  if (disabled_) return {};
  uint32_t zero = 0;
  vigil_eg_state st{};
  if (auto s = put(bpf_map__fd(skel_->maps.eg_state), "eg_state", zero, st); !s) return s;
  for (bpf_link* l : links_) {
    bpf_link__unpin(l);
    bpf_link__destroy(l);  // detaches: it was the last reference
  }
  links_.clear();
  bpf_map* map;
  bpf_object__for_each_map(map, skel_->obj) {
    if (!is_internal_map(map)) bpf_map__unpin(map, nullptr);
  }
  disabled_ = true;
  auto s = remove_dir_pins(pin_dir_);
  rmdir(fs::path(pin_dir_).parent_path().c_str());  // the pin root too, when nothing else is in it
  return s;
}

int Enforcer::epoll_fd() const { return ring_buffer__epoll_fd(ring_); }

Result<int> Enforcer::consume() {
  int n = ring_buffer__consume(ring_);
  if (n < 0) return os_error("read egress ring buffer", -n);
  return n;
}

int Enforcer::on_sample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<Enforcer*>(ctx);
  if (size < sizeof(vigil_eg_event)) return 0;
  vigil_eg_event ev;
  std::memcpy(&ev, data, sizeof(ev));
  self->handler_(ev);
  return 0;
}

std::array<uint64_t, 2> Enforcer::lost_counters() const {
  std::array<uint64_t, 2> out{};
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<uint64_t> per_cpu(ncpu);
  for (uint32_t slot = 0; slot < out.size(); ++slot) {
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.eg_lost), &slot, per_cpu.data())) continue;
    for (uint64_t v : per_cpu) out[slot] += v;
  }
  return out;
}

std::vector<std::string> Enforcer::program_names() const {
  std::vector<std::string> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) out.emplace_back(bpf_program__name(prog));
  return out;
}

}  // namespace vigil
