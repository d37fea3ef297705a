// Which processes a policy selector names: the one definition of selector
// matching, used by the reference evaluator, the compiled tables' judge and
// the resolution of selectors against this host.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "policy/model.h"

namespace vigil::policy {

// The process a selector is asked about.
struct Subject {
  std::string exe;
  uint32_t uid = 0;
  std::string cgroup;
  // The pod the process runs in, when known (pod selectors match nothing else).
  bool in_pod = false;
  std::string pod_namespace{};
  std::map<std::string, std::string> pod_labels{};
};

// The pod selector names a pod of namespace `ns` with these labels.
bool pod_matches(const PodSelector& s, const std::string& ns, const std::map<std::string, std::string>& labels);

// fnmatch(3) with FNM_PATHNAME: '*' never crosses a '/'.
bool glob_any(const std::vector<std::string>& globs, const std::string& value);
// True when `glob` names `path` or one of its ancestors: a cgroup selector
// covers the cgroup it names and every cgroup below it.
bool cgroup_glob_matches(const std::string& glob, const std::string& path);
// Every field the selector gives matches (an absent field matches anything):
// what the kernel's selector tables compute.
bool fields_match(const Selector& s, const Subject& who);
// A selector with at least one field whose fields all match (the loader
// rejects empty selectors; this is the semantics of DESIGN.md §6).
bool selects(const Selector& s, const Subject& who);

}  // namespace vigil::policy
