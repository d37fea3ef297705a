#include "agent/events/capture.h"

#include <fnmatch.h>

#include <algorithm>
#include <string>

#include "policy/selector.h"

namespace vigil {
namespace {

bool process_fields_match(const CaptureRule& r, const ProcessRef& p, const ConnRef& c) {
  if (!r.binaries.empty() && !policy::glob_any(r.binaries, p.exe)) return false;
  if (!r.comms.empty() && !std::any_of(r.comms.begin(), r.comms.end(), [&](const std::string& g) {
        return fnmatch(g.c_str(), p.comm.c_str(), 0) == 0;
      }))
    return false;
  if (!r.cgroups.empty() && !std::any_of(r.cgroups.begin(), r.cgroups.end(), [&](const std::string& g) {
        return policy::cgroup_glob_matches(g, p.cgroup);
      }))
    return false;
  if (!r.uids.empty() && std::find(r.uids.begin(), r.uids.end(), p.uid) == r.uids.end()) return false;
  if (!r.ports.empty()) {
    uint16_t port = c.role == "server" ? c.local.port : c.remote.port;
    if (std::find(r.ports.begin(), r.ports.end(), port) == r.ports.end()) return false;
  }
  return true;
}

// "GET /api/*" names the method and the template; "/api/*" any method.
bool endpoint_matches(const std::string& glob, std::string_view method, std::string_view endpoint) {
  std::string_view g = glob;
  if (size_t sp = g.find(' '); sp != std::string_view::npos) {
    if (g.substr(0, sp) != method) return false;
    g.remove_prefix(sp + 1);
  }
  return fnmatch(std::string(g).c_str(), std::string(endpoint).c_str(), 0) == 0;
}

}  // namespace

CapturePolicy::CapturePolicy(CaptureOptions o) : o_(std::move(o)) {}  // at most 64 rules (the config's limit)

CaptureScope CapturePolicy::for_connection(const ProcessRef& p, const ConnRef& c) const {
  CaptureScope s{o_.level, 0};
  for (size_t i = 0; i < o_.rules.size(); ++i) {
    const CaptureRule& r = o_.rules[i];
    if (!process_fields_match(r, p, c)) continue;
    if (!r.endpoints.empty()) {
      s.endpoint_rules |= uint64_t{1} << i;
      continue;
    }
    s.level = r.level;
    break;
  }
  return s;
}

CaptureLevel CapturePolicy::for_call(const CaptureScope& s, std::string_view method, std::string_view endpoint,
                                     uint64_t nth) const {
  CaptureLevel l = s.level;
  for (uint64_t bits = s.endpoint_rules; bits; bits &= bits - 1) {
    const CaptureRule& r = o_.rules[static_cast<size_t>(__builtin_ctzll(bits))];
    if (std::any_of(r.endpoints.begin(), r.endpoints.end(),
                    [&](const std::string& g) { return endpoint_matches(g, method, endpoint); })) {
      l = r.level;
      break;
    }
  }
  if (l == CaptureLevel::kHeaders &&
      (nth < o_.full_first || (o_.full_sample_every && (nth - o_.full_first) % o_.full_sample_every == 0)))
    l = CaptureLevel::kFull;
  return l;
}

bool CapturePolicy::may_be_full() const {
  auto full = [&](CaptureLevel l) {
    return l == CaptureLevel::kFull || (l == CaptureLevel::kHeaders && (o_.full_first || o_.full_sample_every));
  };
  return full(o_.level) || std::any_of(o_.rules.begin(), o_.rules.end(), [&](const CaptureRule& r) { return full(r.level); });
}

nlohmann::json CapturePolicy::status() const {
  return {{"level", to_string(o_.level)},
          {"full_first", o_.full_first},
          {"full_sample_every", o_.full_sample_every},
          {"rules", o_.rules.size()},
          {"calls",
           {{"metadata", counts_[0]}, {"headers", counts_[1]}, {"full", counts_[2]}}},
          // What each level feeds (README "How capture works").
          {"feeds",
           {{"metadata", "method, host, path, query, endpoint template, status, latency, sizes; inventory counts, "
                         "status codes, latency, parameters, examples, remotes; secrets in the query"},
            {"headers", "metadata + header fields in api_call events, auth schemes, secrets and sensitive data in "
                        "headers, media types, credential findings"},
            {"full", "headers + bodies: sensitive data in bodies, body schemas, shipped bodies (capture.bodies)"}}}};
}

}  // namespace vigil
