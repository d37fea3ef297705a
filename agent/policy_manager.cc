#include "policy_manager.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <glob.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/log.h"
#include "event_mapper.h"
#include "loader.h"
#include "system.h"

namespace vigil {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kAllowWindowNs = 10'000'000'000ull;  // one allow per flow per 10 s
constexpr uint64_t kRefreshNs = 2'000'000'000ull;       // selector re-resolution

bool glob_any(const std::vector<std::string>& globs, const std::string& value) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& g) { return fnmatch(g.c_str(), value.c_str(), FNM_PATHNAME) == 0; });
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool is_policy_file(const fs::path& p) {
  auto ext = p.extension().string();
  return (ext == ".yaml" || ext == ".yml") && !p.filename().string().starts_with(".");
}

const char* mode_name(policy::Mode m) { return m == policy::Mode::kEnforce ? "enforce" : "audit"; }

std::string addr_text(const uint8_t a[16]) {
  char buf[INET6_ADDRSTRLEN] = {};
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(a, a + 12, kMapped)) inet_ntop(AF_INET, a + 12, buf, sizeof(buf));
  else inet_ntop(AF_INET6, a, buf, sizeof(buf));
  return buf;
}

}  // namespace

EgressSelectors resolve_selectors(const policy::Tables& t, const std::string& cgroup_root,
                                  const std::string& proc_root) {
  EgressSelectors out;
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> bins;
  auto add_bin = [&](const struct stat& st, size_t policy) {
    bins[{kernel_dev(st.st_dev), st.st_ino}] |= 1ull << policy;
  };
  bool any_bins = false, any_cgroups = false;
  for (size_t i = 0; i < t.policies.size(); ++i) {
    const auto& s = t.policies[i].selector;
    any_bins |= !s.binaries.empty();
    any_cgroups |= !s.cgroups.empty();
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
  if (any_bins) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(proc_root, ec)) {
      std::string pid = entry.path().filename().string();
      if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
      std::error_code lec;
      std::string exe = fs::read_symlink(entry.path() / "exe", lec).string();
      if (lec || exe.empty()) continue;
      if (exe.ends_with(" (deleted)")) exe.resize(exe.size() - 10);
      for (size_t i = 0; i < t.policies.size(); ++i) {
        if (!glob_any(t.policies[i].selector.binaries, exe)) continue;
        struct stat st {};
        if (stat((entry.path() / "exe").c_str(), &st) == 0) add_bin(st, i);
      }
    }
  }
  for (auto& [k, mask] : bins) out.bins.push_back({{0, k.first, k.second}, mask});

  // Cgroups: each cgroup a glob names exactly; the kernel extends it to descendants.
  if (any_cgroups && !cgroup_root.empty()) {
    auto visit = [&](const fs::path& dir, const std::string& rel) {
      struct stat st {};
      if (stat(dir.c_str(), &st) != 0) return;
      uint64_t mask = 0;
      for (size_t i = 0; i < t.policies.size(); ++i)
        if (glob_any(t.policies[i].selector.cgroups, rel)) mask |= 1ull << i;
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

EgressTables kernel_tables(const policy::Tables& t, EgressSelectors selectors) {
  EgressTables k;
  k.gen = {t.active_mask(), t.enforce_mask(), t.any_bin_mask(), t.any_cgroup_mask(), t.any_uid_mask()};
  k.selectors = std::move(selectors);
  for (const auto& e : t.cidrs) {
    vigil_eg_cidr_key key{};
    key.prefixlen = 32 + e.prefix;
    key.policy = e.policy;
    std::copy(e.addr.begin(), e.addr.end(), key.addr);
    k.cidrs.push_back({key, e.ports});
  }
  std::map<uint64_t, uint64_t> patterns;
  for (const auto& f : t.fqdns) {
    patterns[f.hash] |= 1ull << f.policy;
    k.fqdn_ports.push_back({{0, f.policy, f.hash}, f.ports});
  }
  k.fqdns.assign(patterns.begin(), patterns.end());
  return k;
}

bool operator==(const EgressSelectors& a, const EgressSelectors& b) {
  auto same = [](const auto& x, const auto& y) {
    return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), [](const auto& p, const auto& q) {
             return std::memcmp(&p.first, &q.first, sizeof(p.first)) == 0 && p.second == q.second;
           });
  };
  return same(a.bins, b.bins) && same(a.cgroups, b.cgroups) && same(a.uids, b.uids);
}

PolicyManager::PolicyManager(const Config& config, std::string cgroup_root, Ship ship, ProcessOf process_of)
    : config_(config), cgroup_root_(std::move(cgroup_root)), ship_(std::move(ship)),
      process_of_(std::move(process_of)) {}

PolicyManager::~PolicyManager() {
  if (inotify_fd_ >= 0) close(inotify_fd_);
}

bool PolicyManager::disabled_marker() const {
  return fs::exists(fs::path(config_.data_dir) / "egress-disabled");
}

Status PolicyManager::start() {
  watch_dir();
  reload("start");
  if (!enforcer_ && Enforcer::pinned_state_exists(config_.policies.pin_dir) && !disabled_marker()) {
    // An earlier agent left enforcement pinned; adopt it even with no policies now.
    if (auto s = enforce(true); !s) return s;
  }
  return {};
}

void PolicyManager::watch_dir() {
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    log::warn("{}", os_error("inotify for policies.dir").message);
    return;
  }
  std::error_code ec;
  fs::create_directories(config_.policies.dir, ec);
  if (inotify_add_watch(inotify_fd_, config_.policies.dir.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) < 0)
    log::warn("{}", os_error("watch " + config_.policies.dir).message);
}

void PolicyManager::on_inotify() {
  char buf[4096];
  bool relevant = false;
  ssize_t n;
  while ((n = read(inotify_fd_, buf, sizeof(buf))) > 0) {
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->len && is_policy_file(ev->name)) relevant = true;
      p += sizeof(inotify_event) + ev->len;
    }
  }
  if (relevant) reload_pending_ = true;  // coalesced: applied at the next tick
}

Result<std::vector<policy::EgressPolicy>> PolicyManager::combine(const std::map<std::string, FileState>& files) const {
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

void PolicyManager::reload(std::string_view why) {
  reload_pending_ = false;
  std::map<std::string, FileState> next;
  std::set<std::string> changed;
  std::error_code ec;
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(config_.policies.dir, ec))
    if (entry.is_regular_file() && is_policy_file(entry.path())) paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    std::string content = read_file(path);
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
  if (same_files && why != "start" && why != "SIGHUP" && why != "request") return;  // nothing changed
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
  log::info("policies ({}): {} loaded from {}", why, tables_.policies.size(), config_.policies.dir);
  if (auto s = enforce(true); !s) log::error("egress enforcement: {}", s.error().message);
}

Status PolicyManager::enforce(bool force_write) {
  if (disabled_marker()) return {};
  if (!enforcer_) {
    if (tables_.policies.empty() && !Enforcer::pinned_state_exists(config_.policies.pin_dir)) return {};
    if (cgroup_root_.empty()) return Error{"no cgroup v2 mount: egress policies cannot be enforced"};
    EgressOptions o{config_.policies.pin_dir, cgroup_root_, config_.policies.dns_ports, config_.policies.dns_min_ttl};
    auto e = Enforcer::open(o, [this](const vigil_eg_event& ev) { on_verdict(ev); });
    if (!e) return e.error();
    enforcer_ = std::move(*e);
    log::info("egress enforcement {} at {} ({} programs on {})",
              enforcer_->adopted() ? "adopted from pinned state" : "attached", enforcer_->pin_dir(),
              enforcer_->program_names().size(), cgroup_root_);
  }
  EgressSelectors sel = resolve_selectors(tables_, cgroup_root_);
  if (!force_write && sel == selectors_) return {};
  selectors_ = sel;
  return enforcer_->apply(kernel_tables(tables_, std::move(sel)));
}

void PolicyManager::tick(uint64_t now_ns) {
  if (reload_pending_) reload("policies.dir changed");
  if (now_ns - last_refresh_ns_ >= kRefreshNs) {
    last_refresh_ns_ = now_ns;
    if (enforcer_ && !tables_.policies.empty())
      if (auto s = enforce(false); !s) log::error("egress enforcement: {}", s.error().message);
    std::erase_if(recent_allows_, [&](const auto& kv) { return now_ns - kv.second > kAllowWindowNs; });
  }
}

int PolicyManager::epoll_fd() const { return enforcer_ ? enforcer_->epoll_fd() : -1; }

void PolicyManager::consume() {
  if (!enforcer_) return;
  if (auto n = enforcer_->consume(); !n) log::warn("{}", n.error().message);
}

std::array<uint64_t, 2> PolicyManager::lost_counters() const {
  return enforcer_ ? enforcer_->lost_counters() : std::array<uint64_t, 2>{};
}

void PolicyManager::emit_policy(const std::string& name, const char* action, std::optional<std::string> error) {
  Event e;
  e.time_ns = BootClock::now_wall_ns();
  e.body = PolicyEvent{name, action, std::move(error)};
  ship_(std::move(e));
}

void PolicyManager::on_verdict(const vigil_eg_event& ev) {
  ++verdicts_;
  if (ev.verdict == VIGIL_EG_ALLOW) {
    AllowKey key{ev.pid, ev.gen, ev.policy, ev.proto, ev.port, {}};
    std::copy(ev.addr, ev.addr + 16, key.addr.begin());
    uint64_t now = BootClock::now_wall_ns();
    auto [it, fresh] = recent_allows_.emplace(key, now);
    if (!fresh) {
      ++allows_aggregated_;
      return;
    }
  }
  const policy::Tables& t =
      enforcer_ && ev.gen != enforcer_->active_generation() && !prev_tables_.policies.empty() ? prev_tables_ : tables_;
  EgressEvent out;
  out.verdict = ev.verdict == VIGIL_EG_ALLOW ? "allow" : ev.verdict == VIGIL_EG_DENY ? "deny" : "would_deny";
  bool known = ev.policy < t.policies.size();
  out.policy = known ? t.policies[ev.policy].name : fmt::format("policy#{}", ev.policy);
  out.mode = ev.verdict == VIGIL_EG_DENY ? "enforce"
             : ev.verdict == VIGIL_EG_WOULD_DENY ? "audit"
             : known ? mode_name(t.policies[ev.policy].mode) : "audit";
  out.rule = ev.rule == VIGIL_EG_RULE_LOOPBACK ? "loopback"
             : ev.rule == VIGIL_EG_RULE_NONE   ? ""
                                               : fmt::format("egress[{}]", ev.rule);
  out.proto = ev.proto == 17 ? "udp" : "tcp";
  out.dst.addr = addr_text(ev.addr);
  out.dst.port = ev.port;
  if (ev.fqdn_hash)
    if (auto p = t.pattern_of(ev.fqdn_hash); !p.empty()) out.dst.fqdn = std::string(p);
  Event e;
  e.time_ns = BootClock::now_wall_ns();
  e.process = process_of_(ev);
  e.body = std::move(out);
  ship_(std::move(e));
}

std::optional<nlohmann::json> PolicyManager::command(const std::string& cmd, const nlohmann::json& req) {
  if (cmd == "policy_apply") return apply_file(req);
  if (cmd == "policy_list") return list();
  if (cmd == "policy_disable") return disable();
  if (cmd == "policy_reload") {
    reload("request");
    return list();
  }
  return std::nullopt;
}

nlohmann::json PolicyManager::apply_file(const nlohmann::json& req) {
  if (!req.contains("name") || !req["name"].is_string() || !req.contains("content") || !req["content"].is_string())
    return {{"ok", false}, {"errors", {"policy_apply needs \"name\" and \"content\" strings"}}};
  std::string base = fs::path(req["name"].get<std::string>()).filename().string();
  if (!is_policy_file(base)) base += ".yaml";
  fs::path target = fs::path(config_.policies.dir) / base;
  std::string content = req["content"].get<std::string>();

  auto loaded = policy::load_policies(content, req["name"].get<std::string>());
  if (!loaded) return {{"ok", false}, {"errors", {loaded.error().message}}};
  // Dry run against the other files before anything changes.
  auto trial = files_;
  trial[target.string()] = {content, *loaded};
  auto all = combine(trial);
  if (!all) return {{"ok", false}, {"errors", {all.error().message}}};
  if (auto t = policy::compile(*all); !t) return {{"ok", false}, {"errors", {t.error().message}}};

  std::error_code ec;
  fs::create_directories(config_.policies.dir, ec);
  fs::path tmp = target;
  tmp.replace_filename("." + base + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) return {{"ok", false}, {"errors", {fmt::format("write {}: {}", tmp.string(), std::strerror(errno))}}};
  }
  if (rename(tmp.c_str(), target.c_str()) != 0)
    return {{"ok", false}, {"errors", {os_error("install " + target.string()).message}}};
  fs::remove(fs::path(config_.data_dir) / "egress-disabled", ec);
  reload("policy apply");
  nlohmann::json names = nlohmann::json::array();
  for (const auto& p : *loaded) names.push_back(p.name);
  nlohmann::json reply = list();
  reply["ok"] = true;
  reply["applied"] = names;
  reply["file"] = target.string();
  return reply;
}

nlohmann::json PolicyManager::disable() {
  Status s;
  if (enforcer_) {
    s = enforcer_->disable();
    enforcer_.reset();
  } else {
    s = Enforcer::remove_pinned_state(config_.policies.pin_dir);
  }
  if (!s) return {{"ok", false}, {"errors", {s.error().message}}};
  std::error_code ec;
  fs::create_directories(config_.data_dir, ec);
  std::ofstream(fs::path(config_.data_dir) / "egress-disabled") << "vigil policy disable\n";
  selectors_ = {};
  for (const auto& p : tables_.policies) emit_policy(p.name, "removed", "enforcement disabled");
  log::info("egress enforcement disabled: programs detached, pins removed");
  nlohmann::json reply = list();
  reply["ok"] = true;
  return reply;
}

nlohmann::json PolicyManager::list() const {
  nlohmann::json policies = nlohmann::json::array();
  for (const auto& [path, f] : files_) {
    for (const auto& p : f.policies) {
      policies.push_back({{"name", p.name},
                          {"file", path},
                          {"mode", mode_name(p.mode)},
                          {"binaries", p.selector.binaries},
                          {"cgroups", p.selector.cgroups},
                          {"uids", p.selector.uids},
                          {"allow_loopback", p.allow_loopback},
                          {"rules", p.egress.size()}});
    }
  }
  return {{"policies", policies}, {"enforcement", status()}};
}

nlohmann::json PolicyManager::status() const {
  auto lost = lost_counters();
  return {{"state", enforcer_ ? "enforcing" : disabled_marker() ? "disabled" : "idle"},
          {"pin_dir", enforcer_ ? enforcer_->pin_dir() : config_.policies.pin_dir},
          {"adopted", enforcer_ && enforcer_->adopted()},
          {"generation", enforcer_ ? enforcer_->active_generation() : 0},
          {"policies", tables_.policies.size()},
          {"cidr_entries", tables_.cidrs.size()},
          {"fqdn_patterns", tables_.fqdns.size()},
          {"selected_binaries", selectors_.bins.size()},
          {"selected_cgroups", selectors_.cgroups.size()},
          {"verdicts", verdicts_},
          {"allows_aggregated", allows_aggregated_},
          {"lost_verdicts", lost[0]},
          {"dns_answers_not_learnt", lost[1]}};
}

}  // namespace vigil
