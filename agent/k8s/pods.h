// Pod metadata of this node, from the Kubernetes API server: the Pod model read
// from the API's JSON, the owning workload resolved from ownerReferences, and a
// bounded cache (by pod UID and container ID) that the event path reads and the
// watcher (agent/k8s/watcher.h) writes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"

namespace vigil::k8s {

using Labels = std::map<std::string, std::string>;

// What owns a pod, as users name it: Deployment (through its ReplicaSet), StatefulSet,
// DaemonSet, Job, CronJob (through its Job), or the pod itself ("Pod") when nothing does.
struct Workload {
  std::string kind, name;
  bool operator==(const Workload&) const = default;
};

struct Pod {
  std::string uid, ns, name, node, phase, resource_version;
  Labels labels;
  Workload workload;
  std::vector<std::pair<std::string, std::string>> containers;  // container ID (no runtime:// prefix) -> name
};

// A Pod object of the API (a list item or a watch event's object). An error names
// what is missing; the JSON is not trusted beyond the fields read.
Result<Pod> parse_pod(const nlohmann::json& j);

// The workload from the pod's metadata (ownerReferences with controller: true, and
// the pod-template-hash label: a ReplicaSet "web-5d8f7c9b7" with hash "5d8f7c9b7" is
// Deployment "web"; a Job "backup-28391520" whose name ends in digits is CronJob "backup").
Workload owner_workload(const nlohmann::json& metadata, const Labels& labels);

// The API's replies, decoded with typed reads only: a field of the wrong type
// (a buggy or impersonated API server, a proxy) is a field not there, never an
// exception (security review F16: three such replies aborted vigild).
struct WatchLine {
  enum Kind { kInvalid, kError, kBookmark, kAdded, kModified, kDeleted, kOther } kind = kInvalid;
  int code = 0;                  // kError: the Status object's code (410: too old)
  std::string message;           // kError
  std::string resource_version;  // of the object, when it names one
  std::optional<Pod> pod;        // kAdded, kModified, kDeleted: the pod when it parsed
  std::string pod_error;         // why it did not
};
// One line of a watch stream.
WatchLine decode_watch_line(std::string_view text);

struct ListPage {
  bool ok = false;  // a PodList at all
  std::vector<Pod> pods;
  size_t bad = 0;  // items that are not pods
  std::string cont, resource_version;
};
// One page of a pod list.
ListPage decode_list_page(std::string_view body);

// What an event's process gets from its pod.
struct PodView {
  std::string ns, pod, container;
  Workload workload;
  Labels labels;  // the configured subset (kubernetes.labels)
};

class PodCache {
 public:
  PodCache(std::vector<std::string> event_labels, size_t max_pods)
      : event_labels_(std::move(event_labels)), max_pods_(max_pods) {}

  // A list's result: the cache becomes exactly these pods.
  void replace(std::vector<Pod> pods);
  // A watch event: ADDED or MODIFIED (upsert), DELETED (remove).
  void upsert(Pod p);
  void remove(const std::string& uid);

  // The pod of `pod_uid` (dashed, as parse_container_ref gives it), with the name of
  // the container `container_id` when the pod lists it.
  std::optional<PodView> lookup(std::string_view pod_uid, std::string_view container_id) const;
  // The UIDs of the pods `pred` accepts (policy selectors: policy::pod_matches), by UID.
  std::vector<std::string> uids_where(const std::function<bool(const Pod&)>& pred) const;

  // Changes on every change: policy resolution re-runs when it moved.
  uint64_t generation() const;
  size_t size() const;
  uint64_t dropped() const;  // pods not kept (max_pods)
  size_t max_pods() const { return max_pods_; }

 private:
  void index_locked(const Pod& p);
  void unindex_locked(const Pod& p);

  std::vector<std::string> event_labels_;
  size_t max_pods_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Pod> pods_;                 // by uid
  std::unordered_map<std::string, std::string> containers_;   // container id -> pod uid
  uint64_t generation_ = 0, dropped_ = 0;
};

}  // namespace vigil::k8s
