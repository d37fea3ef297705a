#include "agent/k8s/pods.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace vigil::k8s {
namespace {

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool boolean(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

void add_containers(const nlohmann::json& status, const char* key, Pod& p) {
  auto it = status.find(key);
  if (it == status.end() || !it->is_array()) return;
  for (const auto& c : *it) {
    if (!c.is_object()) continue;
    std::string id = str(c, "containerID");
    if (size_t sep = id.find("://"); sep != std::string::npos) id.erase(0, sep + 3);
    if (!id.empty()) p.containers.emplace_back(std::move(id), str(c, "name"));
  }
}

}  // namespace

Workload owner_workload(const nlohmann::json& metadata, const Labels& labels) {
  auto refs = metadata.find("ownerReferences");
  if (refs != metadata.end() && refs->is_array()) {
    for (const auto& r : *refs) {
      if (!r.is_object() || !boolean(r, "controller")) continue;
      std::string kind = str(r, "kind"), name = str(r, "name");
      if (kind.empty() || name.empty()) continue;
      if (kind == "ReplicaSet") {
        // The Deployment controller names its ReplicaSets <deployment>-<pod-template-hash>.
        auto hash = labels.find("pod-template-hash");
        if (hash != labels.end() && name.size() > hash->second.size() + 1 && name.ends_with("-" + hash->second))
          return {"Deployment", name.substr(0, name.size() - hash->second.size() - 1)};
        return {"ReplicaSet", name};
      }
      if (kind == "Job") {
        // The CronJob controller names its Jobs <cronjob>-<scheduled minute since the epoch>.
        size_t dash = name.rfind('-');
        if (dash != std::string::npos && dash > 0 && all_digits(std::string_view(name).substr(dash + 1)))
          return {"CronJob", name.substr(0, dash)};
        return {"Job", name};
      }
      return {kind, name};
    }
  }
  return {"Pod", str(metadata, "name")};
}

Result<Pod> parse_pod(const nlohmann::json& j) {
  if (!j.is_object()) return Error{"a pod is not a JSON object"};
  auto md = j.find("metadata");
  if (md == j.end() || !md->is_object()) return Error{"a pod without metadata"};
  Pod p;
  p.uid = str(*md, "uid");
  p.name = str(*md, "name");
  p.ns = str(*md, "namespace");
  p.resource_version = str(*md, "resourceVersion");
  if (p.uid.empty() || p.name.empty()) return Error{fmt::format("a pod without metadata.uid or metadata.name ({})",
                                                                p.name.empty() ? p.uid : p.name)};
  if (auto l = md->find("labels"); l != md->end() && l->is_object())
    for (const auto& [k, v] : l->items())
      if (v.is_string()) p.labels.emplace(k, v.get<std::string>());
  p.workload = owner_workload(*md, p.labels);
  if (auto spec = j.find("spec"); spec != j.end() && spec->is_object()) p.node = str(*spec, "nodeName");
  if (auto st = j.find("status"); st != j.end() && st->is_object()) {
    p.phase = str(*st, "phase");
    add_containers(*st, "initContainerStatuses", p);
    add_containers(*st, "containerStatuses", p);
    add_containers(*st, "ephemeralContainerStatuses", p);
  }
  return p;
}

WatchLine decode_watch_line(std::string_view text) {
  WatchLine w;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return w;
  auto type = j.find("type");
  auto obj = j.find("object");
  if (type == j.end() || !type->is_string() || obj == j.end()) return w;
  const std::string& t = type->get_ref<const std::string&>();
  if (t == "ERROR") {
    w.kind = WatchLine::kError;
    if (obj->is_object()) {
      if (auto c = obj->find("code"); c != obj->end() && c->is_number_integer()) {
        auto v = c->get<int64_t>();
        w.code = v >= 100 && v <= 599 ? static_cast<int>(v) : 0;
      }
      w.message = str(*obj, "message").substr(0, 512);
    }
    return w;
  }
  if (obj->is_object())
    if (auto md = obj->find("metadata"); md != obj->end() && md->is_object())
      w.resource_version = str(*md, "resourceVersion");
  if (t == "BOOKMARK") {
    w.kind = WatchLine::kBookmark;
    return w;
  }
  w.kind = t == "ADDED" ? WatchLine::kAdded : t == "MODIFIED" ? WatchLine::kModified
           : t == "DELETED" ? WatchLine::kDeleted : WatchLine::kOther;
  auto p = parse_pod(*obj);
  if (p) w.pod = std::move(*p);
  else w.pod_error = p.error().message;
  return w;
}

ListPage decode_list_page(std::string_view body) {
  ListPage page;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return page;
  auto items = j.find("items");
  if (items == j.end() || !items->is_array()) return page;
  page.ok = true;
  for (const auto& item : *items) {
    auto p = parse_pod(item);
    if (p) page.pods.push_back(std::move(*p));
    else ++page.bad;
  }
  if (auto md = j.find("metadata"); md != j.end() && md->is_object()) {
    page.cont = str(*md, "continue");
    page.resource_version = str(*md, "resourceVersion");
  }
  return page;
}

void PodCache::index_locked(const Pod& p) {
  for (const auto& [id, name] : p.containers) containers_[id] = p.uid;
}

void PodCache::unindex_locked(const Pod& p) {
  for (const auto& [id, name] : p.containers)
    if (auto it = containers_.find(id); it != containers_.end() && it->second == p.uid) containers_.erase(it);
}

void PodCache::replace(std::vector<Pod> pods) {
  std::lock_guard lock(mu_);
  pods_.clear();
  containers_.clear();
  for (auto& p : pods) {
    if (pods_.size() >= max_pods_) {
      ++dropped_;
      continue;
    }
    index_locked(p);
    std::string uid = p.uid;
    pods_.insert_or_assign(std::move(uid), std::move(p));
  }
  ++generation_;
}

void PodCache::upsert(Pod p) {
  std::lock_guard lock(mu_);
  auto it = pods_.find(p.uid);
  if (it == pods_.end()) {
    if (pods_.size() >= max_pods_) {
      ++dropped_;
      return;
    }
  } else {
    unindex_locked(it->second);
  }
  index_locked(p);
  std::string uid = p.uid;
  pods_.insert_or_assign(std::move(uid), std::move(p));
  ++generation_;
}

void PodCache::remove(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  unindex_locked(it->second);
  pods_.erase(it);
  ++generation_;
}

std::optional<PodView> PodCache::lookup(std::string_view pod_uid, std::string_view container_id) const {
  std::lock_guard lock(mu_);
  auto it = pods_.find(std::string(pod_uid));
  if (it == pods_.end() && !container_id.empty()) {
    // A runtime layout without the pod in the cgroup path: the container names it.
    if (auto c = containers_.find(std::string(container_id)); c != containers_.end()) it = pods_.find(c->second);
  }
  if (it == pods_.end()) return std::nullopt;
  const Pod& p = it->second;
  PodView v{p.ns, p.name, "", p.workload, {}};
  for (const auto& [id, name] : p.containers)
    if (id == container_id) v.container = name;
  for (const auto& key : event_labels_)
    if (auto l = p.labels.find(key); l != p.labels.end()) v.labels.insert(*l);
  return v;
}

std::vector<std::string> PodCache::uids_where(const std::function<bool(const Pod&)>& pred) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [uid, p] : pods_)
    if (pred(p)) out.push_back(uid);
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t PodCache::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

size_t PodCache::size() const {
  std::lock_guard lock(mu_);
  return pods_.size();
}

uint64_t PodCache::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

}  // namespace vigil::k8s
