#include "policy/selector.h"

#include <fnmatch.h>

#include <algorithm>

namespace vigil::policy {

bool glob_any(const std::vector<std::string>& globs, const std::string& value) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& g) { return fnmatch(g.c_str(), value.c_str(), FNM_PATHNAME) == 0; });
}

bool cgroup_glob_matches(const std::string& glob, const std::string& path) {
  std::string p = path.empty() ? "/" : path;
  while (true) {
    if (fnmatch(glob.c_str(), p.c_str(), FNM_PATHNAME) == 0) return true;
    size_t slash = p.rfind('/');
    if (slash == std::string::npos || p == "/") return false;
    p = slash == 0 ? "/" : p.substr(0, slash);
  }
}

bool pod_matches(const PodSelector& s, const std::string& ns, const std::map<std::string, std::string>& labels) {
  if (!s.ns.empty() && s.ns != ns) return false;
  return std::all_of(s.match_labels.begin(), s.match_labels.end(), [&](const auto& m) {
    auto it = labels.find(m.first);
    return it != labels.end() && it->second == m.second;
  });
}

bool fields_match(const Selector& s, const Subject& who) {
  if (!s.pods.empty() && !(who.in_pod && std::any_of(s.pods.begin(), s.pods.end(), [&](const PodSelector& p) {
        return pod_matches(p, who.pod_namespace, who.pod_labels);
      })))
    return false;
  if (!s.binaries.empty() && !glob_any(s.binaries, who.exe)) return false;
  if (!s.cgroups.empty() && std::none_of(s.cgroups.begin(), s.cgroups.end(), [&](const std::string& g) {
        return cgroup_glob_matches(g, who.cgroup);
      }))
    return false;
  return s.uids.empty() || std::find(s.uids.begin(), s.uids.end(), who.uid) != s.uids.end();
}

bool selects(const Selector& s, const Subject& who) {
  return !s.empty() && fields_match(s, who);
}

}  // namespace vigil::policy
