#include "agent/policy/service.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <set>
#include <unordered_map>

#include "agent/events/verdict.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "collectors/host/cgroup.h"
#include "policy/loader.h"
#include "policy/resolve.h"

namespace vigil {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kAllowWindowNs = 10'000'000'000ull;  // one allow per flow per 10 s
constexpr uint64_t kRefreshNs = 2'000'000'000ull;       // selector re-resolution

constexpr const char* kReloadReasons[] = {"start", "SIGHUP", "request", "policy apply", "policies.dir changed"};
static_assert(std::size(kReloadReasons) == static_cast<size_t>(ReloadReason::kDirChanged) + 1,
              "one name per ReloadReason");

bool is_policy_file(const fs::path& p) {
  auto ext = p.extension().string();
  return (ext == ".yaml" || ext == ".yml") && !p.filename().string().starts_with(".");
}

}  // namespace

const char* reload_reason_name(ReloadReason why) { return kReloadReasons[static_cast<size_t>(why)]; }

PolicyService::PolicyService(PolicyServiceOptions options, policy::OpenEnforcer open_enforcer, Ship ship,
                             ProcessOf process_of)
    : options_(std::move(options)), pins_(options_.pin_root, options_.data_dir),
      open_enforcer_(std::move(open_enforcer)), ship_(std::move(ship)), process_of_(std::move(process_of)) {}

Status PolicyService::start() {
  watch_dir();
  reload(ReloadReason::kStart);
  if (!enforcer_ && pins_.exist() && !pins_.disabled()) {
    // An earlier agent left enforcement pinned; adopt it even with no policies now.
    if (auto s = enforce(true); !s) return s;
  }
  return {};
}

void PolicyService::watch_dir() {
  inotify_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_) {
    log::warn("{}", os_error("inotify for policies.dir").message);
    return;
  }
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (inotify_add_watch(inotify_.get(), options_.dir.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) < 0)
    log::warn("{}", os_error("watch " + options_.dir).message);
}

void PolicyService::on_inotify() {
  char buf[4096];
  bool relevant = false;
  ssize_t n;
  while ((n = read(inotify_.get(), buf, sizeof(buf))) > 0) {
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->len && is_policy_file(ev->name)) relevant = true;
      p += sizeof(inotify_event) + ev->len;
    }
  }
  if (relevant) reload_pending_ = true;  // coalesced: applied at the next tick
}

Result<std::vector<policy::EgressPolicy>> PolicyService::combine(const std::map<std::string, FileState>& files) const {
  std::vector<policy::EgressPolicy> all;
  std::map<std::string, std::string> owner;
  for (const auto& [path, f] : files) {
    for (const auto& p : f.policies) {
      auto [it, fresh] = owner.emplace(p.name, path);
      if (!fresh && it->second != path)
        return Error{fmt::format("{}: policy '{}' is already defined in {}", path, p.name, it->second)};
      all.push_back(p);
    }
  }
  return all;
}

void PolicyService::reload(ReloadReason why) {
  reload_pending_ = false;
  std::map<std::string, FileState> next;
  std::set<std::string> changed;
  std::error_code ec;
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec))
    if (entry.is_regular_file() && is_policy_file(entry.path())) paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    std::string content = read_small_file(path.string());
    auto old = files_.find(path.string());
    if (old != files_.end() && old->second.content == content) {
      next.emplace(path.string(), old->second);
      continue;
    }
    auto loaded = policy::load_policies(content, path.string());
    if (!loaded) {
      log::error("policy file rejected: {}", loaded.error().message);
      emit_policy(path.filename().string(), "rejected", loaded.error().message);
      if (old != files_.end()) next.emplace(path.string(), old->second);  // last good keeps enforcing
      continue;
    }
    next[path.string()] = {content, std::move(*loaded)};
    changed.insert(path.string());
  }
  bool same_files = next.size() == files_.size() &&
                    std::equal(next.begin(), next.end(), files_.begin(),
                               [](const auto& a, const auto& b) { return a.first == b.first && a.second.content == b.second.content; });
  if (same_files && why == ReloadReason::kDirChanged) return;  // nothing changed
  auto all = combine(next);
  if (!all) {
    log::error("policies rejected: {}", all.error().message);
    emit_policy("*", "rejected", all.error().message);
    return;
  }
  auto tables = policy::compile(*all);
  if (!tables) {
    log::error("policies rejected: {}", tables.error().message);
    emit_policy("*", "rejected", tables.error().message);
    return;
  }
  std::set<std::string> before, after;
  for (const auto& p : tables_.policies) before.insert(p.name);
  for (const auto& p : tables->policies) after.insert(p.name);
  files_ = std::move(next);
  prev_tables_ = std::move(tables_);
  tables_ = std::move(*tables);
  for (const auto& [path, f] : files_)
    if (changed.count(path))
      for (const auto& p : f.policies) emit_policy(p.name, "loaded");
  for (const auto& name : before)
    if (!after.count(name)) emit_policy(name, "removed");
  log::info("policies ({}): {} loaded from {}", reload_reason_name(why), tables_.policies.size(), options_.dir);
  if (auto s = enforce(true); !s) log::error("egress enforcement: {}", s.error().message);
}

Status PolicyService::enforce(bool force_write) {
  if (pins_.disabled()) return {};
  if (!enforcer_) {
    if (tables_.policies.empty() && !pins_.exist()) return {};
    if (options_.cgroup_root.empty()) return Error{"no cgroup v2 mount: egress policies cannot be enforced"};
    auto e = open_enforcer_([this](const vigil_eg_event& ev) { on_verdict(ev); });
    if (!e) return e.error();
    enforcer_ = std::move(*e);
    log::info("egress enforcement {} at {} ({} programs on {})",
              enforcer_->adopted() ? "adopted from pinned state" : "attached", enforcer_->pin_dir(),
              enforcer_->program_names().size(), options_.cgroup_root);
  }
  // Pod selectors: the pod-level cgroup of each selected pod (its last path component
  // names the pod; the kernel covers the containers below it).
  std::unordered_map<std::string, uint64_t> pod_masks;
  if (options_.pod_uids)
    for (size_t i = 0; i < tables_.policies.size(); ++i)
      for (const auto& ps : tables_.policies[i].selector.pods)
        for (const auto& uid : options_.pod_uids(ps)) pod_masks[uid] |= 1ull << i;
  policy::PodCgroupMask pods;
  std::set<std::string> found;
  if (!pod_masks.empty())
    pods = [&pod_masks, &found](const std::string& rel) -> uint64_t {
      // The pod-level directory (and helpers beside its containers): a pod below a
      // kubelet parent, not a container.
      ContainerRef ref = parse_container_ref(rel);
      const std::string& uid = ref.pod_uid;
      if (uid.empty() || !ref.container_id.empty()) return 0;
      auto it = pod_masks.find(uid);
      if (it == pod_masks.end()) return 0;
      found.insert(uid);
      return it->second;
    };
  policy::EgressSelectors sel = policy::resolve_selectors(tables_, options_.cgroup_root, options_.proc_root, pods);
  // A selected pod without a cgroup yet (scheduled, its containers not started): look
  // again at every tick, not every refresh, so that its first connect is judged.
  pods_pending_ = found.size() < pod_masks.size();
  if (!force_write && sel == selectors_) return {};
  selectors_ = sel;
  return enforcer_->apply(policy::kernel_tables(tables_, std::move(sel)));
}

void PolicyService::tick(uint64_t now_ns) {
  if (reload_pending_) reload(ReloadReason::kDirChanged);
  bool pods_moved = false;
  if (options_.pods_generation)
    if (uint64_t g = options_.pods_generation(); g != pods_generation_) pods_generation_ = g, pods_moved = true;
  if (pods_moved || pods_pending_ || now_ns - last_refresh_ns_ >= kRefreshNs) {
    last_refresh_ns_ = now_ns;
    if (enforcer_ && !tables_.policies.empty())
      if (auto s = enforce(false); !s) log::error("egress enforcement: {}", s.error().message);
    std::erase_if(recent_allows_, [&](const auto& kv) { return now_ns - kv.second > kAllowWindowNs; });
  }
}

int PolicyService::epoll_fd() const { return enforcer_ ? enforcer_->epoll_fd() : -1; }

void PolicyService::consume() {
  if (!enforcer_) return;
  if (auto n = enforcer_->consume(); !n) log::warn("{}", n.error().message);
}

policy::Enforcer::LostCounters PolicyService::lost_counters() const {
  return enforcer_ ? enforcer_->lost_counters() : policy::Enforcer::LostCounters{};
}

void PolicyService::emit_policy(const std::string& name, const char* action, std::optional<std::string> error) {
  Event e;
  e.time_ns = BootClock::now_wall_ns();
  e.body = PolicyEvent{name, action, std::move(error)};
  ship_(std::move(e));
}

void PolicyService::on_verdict(const vigil_eg_event& ev) {
  ++verdicts_;
  if (ev.verdict == VIGIL_EG_ALLOW) {
    AllowKey key{ev.hdr.pid, ev.gen, ev.policy, ev.proto, ev.port, {}};
    std::copy(ev.addr, ev.addr + 16, key.addr.begin());
    auto [it, fresh] = recent_allows_.emplace(key, BootClock::now_wall_ns());
    if (!fresh) {
      ++allows_aggregated_;
      return;
    }
  }
  const policy::Tables& t =
      enforcer_ && ev.gen != enforcer_->active_generation() && !prev_tables_.policies.empty() ? prev_tables_ : tables_;
  Event e;
  e.time_ns = BootClock::now_wall_ns();
  e.process = std::make_shared<const ProcessRef>(process_of_(ev.hdr));
  e.body = egress_event(ev, t);
  ship_(std::move(e));
}

Result<PolicyService::Applied> PolicyService::apply(std::string_view name, std::string_view content) {
  std::string base = fs::path(std::string(name)).filename().string();
  if (!is_policy_file(base)) base += ".yaml";
  fs::path target = fs::path(options_.dir) / base;

  auto loaded = policy::load_policies(content, name);
  if (!loaded) return loaded.error();
  // Dry run against the other files before anything changes.
  auto trial = files_;
  trial[target.string()] = {std::string(content), *loaded};
  auto all = combine(trial);
  if (!all) return all.error();
  if (auto t = policy::compile(*all); !t) return t.error();

  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (auto s = write_file_atomic(target.string(), content); !s) return s.error();
  pins_.clear_disabled();
  reload(ReloadReason::kApply);
  Applied applied;
  for (const auto& p : *loaded) applied.policies.push_back(p.name);
  applied.file = target.string();
  return applied;
}

Status PolicyService::disable() {
  if (enforcer_) {
    Status s = enforcer_->disable();
    enforcer_.reset();
    if (!s) return s;
  } else if (auto removed = pins_.remove(); !removed) {
    return removed.error();
  }
  if (auto s = pins_.mark_disabled(); !s) log::warn("{}", s.error().message);
  selectors_ = {};
  for (const auto& p : tables_.policies) emit_policy(p.name, "removed", "enforcement disabled");
  log::info("egress enforcement disabled: programs detached, pins removed");
  return {};
}

nlohmann::json PolicyService::list() const {
  nlohmann::json policies = nlohmann::json::array();
  for (const auto& [path, f] : files_) {
    for (const auto& p : f.policies) {
      policies.push_back({{"name", p.name},
                          {"file", path},
                          {"mode", policy::mode_name(p.mode)},
                          {"binaries", p.selector.binaries},
                          {"cgroups", p.selector.cgroups},
                          {"uids", p.selector.uids},
                          {"allow_loopback", p.allow_loopback},
                          {"rules", p.egress.size()}});
    }
  }
  return {{"policies", policies}, {"enforcement", status()}};
}

nlohmann::json PolicyService::status() const {
  auto lost = lost_counters();
  return {{"state", enforcer_ ? "enforcing" : pins_.disabled() ? "disabled" : "idle"},
          {"pin_dir", enforcer_ ? enforcer_->pin_dir() : options_.pin_root},
          {"adopted", enforcer_ && enforcer_->adopted()},
          {"generation", enforcer_ ? enforcer_->active_generation() : 0},
          {"policies", tables_.policies.size()},
          {"cidr_entries", tables_.cidrs.size()},
          {"fqdn_patterns", tables_.fqdns.size()},
          {"selected_binaries", selectors_.bins.size()},
          {"selected_cgroups", selectors_.cgroups.size()},
          {"verdicts", verdicts_},
          {"allows_aggregated", allows_aggregated_},
          {"lost_verdicts", lost[VIGIL_EG_LOST_VERDICTS]},
          {"dns_answers_not_learnt", lost[VIGIL_EG_LOST_DNS]},
          {"dns_answers_unsolicited", lost[VIGIL_EG_DNS_UNSOLICITED]}};
}

}  // namespace vigil
