#include "collectors/kernel/egress_enforcer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "base/fd.h"
#include "base/file.h"
#include "base/log.h"
#include "bpf/egress.skel.h"
#include "collectors/kernel/bpf_util.h"

namespace vigil {
namespace fs = std::filesystem;
namespace {

bool is_internal_map(const bpf_map* m) { return std::string_view(bpf_map__name(m)).find('.') != std::string_view::npos; }

template <class Key, class Value>
Status put(bpf_map* m, const Key& k, const Value& v) {
  if (bpf_map_update_elem(bpf_map__fd(m), &k, &v, BPF_ANY)) return os_error(fmt::format("write map {}", bpf_map__name(m)));
  return {};
}

// The generation a key of a generation-tagged map belongs to.
uint32_t gen_of(const vigil_eg_bin_key& k) { return k.gen; }
uint32_t gen_of(const vigil_eg_cgroup_key& k) { return k.gen; }
uint32_t gen_of(const vigil_eg_uid_key& k) { return k.gen; }
uint32_t gen_of(const vigil_eg_cidr_key& k) { return k.gen; }
uint32_t gen_of(const vigil_eg_fqdn_key& k) { return k.gen; }
uint32_t gen_of(const vigil_eg_fqdn_ports_key& k) { return k.gen; }
template <class Key>
void set_gen(Key& k, uint32_t gen) {
  k.gen = static_cast<decltype(k.gen)>(gen);
}

// Deletes every key of `m` for which `doomed` holds.
template <class Key, class Pred>
Status delete_keys(bpf_map* m, Pred doomed) {
  int fd = bpf_map__fd(m);
  std::vector<Key> keys;
  Key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (doomed(next)) keys.push_back(next);
    key = next;
    prev = &key;
  }
  for (const Key& k : keys)
    if (bpf_map_delete_elem(fd, &k) && errno != ENOENT) return os_error(fmt::format("clear map {}", bpf_map__name(m)));
  return {};
}

template <class Key>
Status clear_gen(bpf_map* m, uint32_t gen) {
  return delete_keys<Key>(m, [gen](const Key& k) { return gen_of(k) == gen; });
}

// Writes `entries` into `m` as generation `gen`.
template <class Key, class Value>
Status put_gen(bpf_map* m, std::vector<std::pair<Key, Value>> entries, uint32_t gen) {
  for (auto& [k, v] : entries) {
    set_gen(k, gen);
    if (auto s = put(m, k, v); !s) return s;
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<EgressEnforcer>> EgressEnforcer::open(const EgressOptions& options, Handler handler) {
  std::unique_ptr<EgressEnforcer> self(new EgressEnforcer());
  policy::EgressPins pins(options.pin_root, "");
  self->handler_ = std::move(handler);
  self->pin_dir_ = pins.dir();
  // Every component root's and private: a pin directory someone else made first
  // would let them switch enforcement off (security review F8).
  if (auto s = ensure_private_dir(pins.root()); !s)
    return Error{fmt::format("egress pin directory: {} (is bpffs mounted?)", s.error().message)};
  if (auto s = ensure_private_dir(self->pin_dir_); !s)
    return Error{fmt::format("egress pin directory: {}", s.error().message)};
  self->adopted_ = pins.adoptable();

  self->skel_ = egress_bpf__open();
  if (!self->skel_) return os_error("open BPF object egress");
  auto* skel = self->skel_;
  if (auto s = check_abi_version("egress", skel->rodata->egress_abi_version, VIGIL_EGRESS_ABI_VERSION); !s)
    return s.error();
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

  Fd cg(::open(options.cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return os_error("open cgroup v2 root " + options.cgroup_root);
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) {
    std::string path = (fs::path(self->pin_dir_) / fmt::format("link_{}", bpf_program__name(prog))).string();
    Link link;
    if (fs::exists(path)) {
      // An earlier agent's link: switch it to our program in one step.
      link.reset(bpf_link__open(path.c_str()));
      if (!link) return os_error("open pinned link " + path);
      if (int err = bpf_link__update_program(link.get(), prog); err)
        return os_error("switch pinned link " + path + " to the new program", -err);
    } else {
      link.reset(bpf_program__attach_cgroup(prog, cg.get()));
      if (!link) return os_error(fmt::format("attach {} to {}", bpf_program__name(prog), options.cgroup_root));
      if (int err = bpf_link__pin(link.get(), path.c_str()); err) return os_error("pin link " + path, -err);
    }
    self->links_.push_back(std::move(link));
  }

  // Pins of other layouts: ours now enforce, so theirs can go.
  if (auto removed = pins.remove_other_layouts(); !removed)
    log::warn("{}", removed.error().message);
  else
    for (const auto& dir : *removed) log::info("removed egress pins of another version: {}", dir);

  uint32_t zero = 0;
  vigil_eg_state st{};
  bpf_map_lookup_elem(bpf_map__fd(skel->maps.eg_state), &zero, &st);
  self->gen_ = st.active_gen & 1;
  st.enabled = 1;
  st.dns_min_ttl_s = options.dns_min_ttl_s;
  if (auto s = put(skel->maps.eg_state, zero, st); !s) return s.error();

  auto* ports = skel->maps.eg_dns_ports;
  if (auto s = delete_keys<uint16_t>(ports, [](uint16_t) { return true; }); !s) return s.error();
  for (uint16_t port : options.dns_ports)
    if (auto s = put(ports, port, uint8_t{1}); !s) return s.error();

  self->ring_ = ring_buffer__new(bpf_map__fd(skel->maps.eg_events), &EgressEnforcer::on_sample, self.get(), nullptr);
  if (!self->ring_) return os_error("open ring buffer of BPF object egress");
  return self;
}

EgressEnforcer::~EgressEnforcer() {
  if (ring_) ring_buffer__free(ring_);
  if (!disabled_)
    for (auto& l : links_) bpf_link__disconnect(l.get());  // pinned: keeps enforcing after we exit
  links_.clear();
  if (skel_) egress_bpf__destroy(skel_);
}

Status EgressEnforcer::clear_generation(uint32_t gen) {
  auto* m = &skel_->maps;
  Status s = clear_gen<vigil_eg_bin_key>(m->eg_bins, gen);
  if (s) s = clear_gen<vigil_eg_cgroup_key>(m->eg_cgroups, gen);
  if (s) s = clear_gen<vigil_eg_uid_key>(m->eg_uids, gen);
  if (s) s = clear_gen<vigil_eg_cidr_key>(m->eg_cidrs, gen);
  if (s) s = clear_gen<vigil_eg_fqdn_key>(m->eg_fqdns, gen);
  if (s) s = clear_gen<vigil_eg_fqdn_ports_key>(m->eg_fqdn_ports, gen);
  if (s) s = put(m->eg_gens, gen, vigil_eg_gen{});
  return s;
}

Status EgressEnforcer::apply(policy::EgressTables t) {
  if (disabled_) return Error{"egress enforcement is disabled"};
  uint32_t next = gen_ ^ 1;
  auto* m = &skel_->maps;
  std::vector<std::pair<vigil_eg_fqdn_key, uint64_t>> fqdns;
  for (auto [hash, mask] : t.fqdns) fqdns.push_back({{0, 0, hash}, mask});
  // A failure before the flip leaves the active generation untouched.
  Status s = clear_generation(next);
  if (s) s = put_gen(m->eg_bins, std::move(t.selectors.bins), next);
  if (s) s = put_gen(m->eg_cgroups, std::move(t.selectors.cgroups), next);
  if (s) s = put_gen(m->eg_uids, std::move(t.selectors.uids), next);
  if (s) s = put_gen(m->eg_cidrs, std::move(t.cidrs), next);
  if (s) s = put_gen(m->eg_fqdns, std::move(fqdns), next);
  if (s) s = put_gen(m->eg_fqdn_ports, std::move(t.fqdn_ports), next);
  if (s) s = put(m->eg_gens, next, t.gen);
  if (!s) return s;

  uint32_t zero = 0;
  vigil_eg_state st{};
  if (bpf_map_lookup_elem(bpf_map__fd(m->eg_state), &zero, &st)) return os_error("read map eg_state");
  st.active_gen = next;
  st.enabled = 1;
  if (auto w = put(m->eg_state, zero, st); !w) return w;
  uint32_t old = gen_;
  gen_ = next;
  // Programs that read the old generation just before the flip finish within
  // their RCU section; give them that before emptying it.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return clear_generation(old);
}

Status EgressEnforcer::disable() {
  if (disabled_) return {};
  uint32_t zero = 0;
  if (auto s = put(skel_->maps.eg_state, zero, vigil_eg_state{}); !s) return s;
  // Unpinned, the links are ours alone: destroying them detaches the programs.
  auto removed = policy::EgressPins::remove_dir(pin_dir_);
  links_.clear();
  disabled_ = true;
  if (!removed) return removed.error();
  return {};
}

int EgressEnforcer::epoll_fd() const { return ring_buffer__epoll_fd(ring_); }

Result<int> EgressEnforcer::consume() {
  int n = ring_buffer__consume(ring_);
  if (n < 0) return os_error("read egress ring buffer", -n);
  return n;
}

int EgressEnforcer::on_sample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<EgressEnforcer*>(ctx);
  if (size < sizeof(vigil_eg_event)) return 0;
  vigil_eg_event ev;
  std::memcpy(&ev, data, sizeof(ev));
  self->handler_(ev);
  return 0;
}

policy::Enforcer::LostCounters EgressEnforcer::lost_counters() const {
  return sum_percpu_slots<VIGIL_EG_LOST_SLOTS>(bpf_map__fd(skel_->maps.eg_lost));
}

std::vector<std::string> EgressEnforcer::program_names() const {
  std::vector<std::string> out;
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) out.emplace_back(bpf_program__name(prog));
  return out;
}

}  // namespace vigil
