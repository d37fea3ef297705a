#include "agent/config/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "base/suggest.h"
#include "base/yaml_guard.h"

namespace vigil {
namespace {

constexpr std::string_view kDefaultYaml = R"(# vigild embedded default configuration
node_name: ""
data_dir: /var/lib/vigil
control_socket: /run/vigil/vigil.sock
capture:
  http: true
  tls: true
  max_capture_bytes: 16384
  bodies: false
  exclude_comms: []
  level: headers              # metadata | headers | full: how much of each call is looked at
  full_first: 20              # at headers: each endpoint's first calls in full ...
  full_sample_every: 100      # ... and 1 in this many after them (0: none)
  rules: []                   # [{level, binaries, comms, cgroups, uids, ports, endpoints}]: first match wins
events:
  kinds: [connection, api_call, egress, api_discovered, finding, policy, lost, checkpoint]
  api_call: all               # all | sampled | notable: which api_call events are shipped
  api_call_sample_every: 100  # sampled: notable calls and 1 in this many of the others
  sinks:
    - type: stdout
    - type: file
      path: /var/log/vigil/events.jsonl
      chain: true
audit:
  key_file: ""
  signing_key: ""
  checkpoint_interval: 60s
policies:
  dir: /etc/vigil/policies.d
  pin_dir: /sys/fs/bpf/vigil
  dns_ports: [53]
  dns_min_ttl: 30
metrics:
  listen: 127.0.0.1:9464
apimap:
  enabled: true
  path_hints: []
  declared_specs: []
  max_endpoints: 10000
kubernetes:
  enabled: auto
  api_server: ""
  token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
  ca_file: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
  labels: [app, app.kubernetes.io/name, app.kubernetes.io/instance, app.kubernetes.io/version, version]
  max_pods: 4096
)";

// Raised inside the parser only; parse_config turns it into an Error.
struct ConfigError {
  std::string message;
};

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& what) const {
    if (mark.is_null()) throw ConfigError{fmt::format("{}: {}", source_, what)};
    throw ConfigError{fmt::format("{}:{}:{}: {}", source_, mark.line + 1, mark.column + 1, what)};
  }

  // Checks that `node` is a map whose keys are all in `allowed`.
  void expect_map(const YAML::Node& node, const std::string& path,
                  std::initializer_list<std::string_view> allowed) const {
    if (!node.IsMap())
      fail(node.Mark(), fmt::format("'{}' must be a mapping", path.empty() ? "<top>" : path));
    for (const auto& kv : node) {
      std::string key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string where = path.empty() ? key : path + "." + key;
        fail(kv.first.Mark(), fmt::format("unknown key '{}'{}", where, suggest_key(key, allowed)));
      }
    }
  }

  void read(const YAML::Node& n, const std::string& key, std::string& out) const {
    if (!n.IsScalar()) fail(n.Mark(), fmt::format("'{}' must be a string", key));
    out = n.Scalar();
  }

  void read(const YAML::Node& n, const std::string& key, bool& out) const {
    static const std::set<std::string> kTrue = {"true", "True", "TRUE", "yes", "on"};
    static const std::set<std::string> kFalse = {"false", "False", "FALSE", "no", "off"};
    if (n.IsScalar() && kTrue.count(n.Scalar())) {
      out = true;
    } else if (n.IsScalar() && kFalse.count(n.Scalar())) {
      out = false;
    } else {
      fail(n.Mark(), fmt::format("'{}' must be true or false", key));
    }
  }

  void read(const YAML::Node& n, const std::string& key, uint32_t& out) const {
    const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() ||
        v > std::numeric_limits<uint32_t>::max())
      fail(n.Mark(), fmt::format("'{}' must be a non-negative integer, got '{}'", key, s));
    out = static_cast<uint32_t>(v);
  }

  void read(const YAML::Node& n, const std::string& key, std::vector<std::string>& out) const {
    if (n.IsNull()) {
      out.clear();
      return;
    }
    if (!n.IsSequence()) fail(n.Mark(), fmt::format("'{}' must be a list of strings", key));
    out.clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) fail(item.Mark(), fmt::format("'{}' items must be strings", key));
      out.push_back(item.Scalar());
    }
  }

  void read(const YAML::Node& n, const std::string& key, std::vector<uint32_t>& out) const {
    if (!n.IsSequence()) fail(n.Mark(), fmt::format("'{}' must be a list of integers", key));
    out.clear();
    for (const auto& item : n) {
      uint32_t v = 0;
      read(item, key, v);
      out.push_back(v);
    }
  }

  // A list of TCP/UDP ports, each 1-65535.
  void read(const YAML::Node& n, const std::string& key, std::vector<uint16_t>& out) const {
    std::vector<uint32_t> v;
    read(n, key, v);
    out.clear();
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == 0 || v[i] > 65535)
        fail(n[i].Mark(), fmt::format("'{}' has port {}; ports are 1-65535", key, v[i]));
      out.push_back(static_cast<uint16_t>(v[i]));
    }
  }

  // Reads map[key] into out when present.
  template <class T>
  void field(const YAML::Node& map, const std::string& path, const char* key, T& out) const {
    YAML::Node n = map[key];
    if (!n) return;
    read(n, path.empty() ? key : path + "." + key, out);
  }

 private:
  std::string source_;
};

void parse_sinks(const Parser& p, const YAML::Node& n, std::vector<SinkConfig>& out) {
  if (!n.IsSequence()) p.fail(n.Mark(), "'events.sinks' must be a list");
  out.clear();
  std::set<std::string> names;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    std::string path = fmt::format("events.sinks[{}]", i);
    p.expect_map(item, path, {"type", "name", "path", "address", "url", "kinds", "min_severity", "queue_max_mb",
                              "spool_max_mb", "fsync_interval_ms", "max_size_mb", "max_files", "chain", "compress", "facility",
                              "app_name", "endpoint", "format", "gzip", "headers", "ca", "client_cert",
                              "client_key", "server_name", "timeout_ms"});
    SinkConfig s;
    if (!item["type"]) p.fail(item.Mark(), fmt::format("'{}.type' is required", path));
    p.field(item, path, "type", s.type);
    p.field(item, path, "name", s.name);
    p.field(item, path, "path", s.path);
    p.field(item, path, "address", s.address);
    p.field(item, path, "url", s.url);
    p.field(item, path, "kinds", s.kinds);
    p.field(item, path, "min_severity", s.min_severity);
    p.field(item, path, "queue_max_mb", s.queue_max_mb);
    p.field(item, path, "spool_max_mb", s.spool_max_mb);
    p.field(item, path, "fsync_interval_ms", s.fsync_interval_ms);
    p.field(item, path, "max_size_mb", s.max_size_mb);
    p.field(item, path, "max_files", s.max_files);
    p.field(item, path, "chain", s.chain);
    p.field(item, path, "compress", s.compress);
    p.field(item, path, "facility", s.facility);
    p.field(item, path, "app_name", s.app_name);
    p.field(item, path, "endpoint", s.endpoint);
    p.field(item, path, "format", s.format);
    p.field(item, path, "gzip", s.gzip);
    p.field(item, path, "ca", s.ca);
    p.field(item, path, "client_cert", s.client_cert);
    p.field(item, path, "client_key", s.client_key);
    p.field(item, path, "server_name", s.server_name);
    p.field(item, path, "timeout_ms", s.timeout_ms);
    if (const YAML::Node h = item["headers"]; h && !h.IsNull()) {
      if (!h.IsMap()) p.fail(h.Mark(), fmt::format("'{}.headers' must be a mapping of header name to value", path));
      for (const auto& kv : h) {
        std::string k = kv.first.Scalar();
        if (!kv.second.IsScalar()) p.fail(kv.second.Mark(), fmt::format("'{}.headers.{}' must be a string", path, k));
        std::string v = kv.second.Scalar();
        bool token = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c);
        });
        if (!token) p.fail(kv.first.Mark(), fmt::format("'{}.headers': '{}' is not an HTTP header name", path, k));
        if (v.find_first_of("\r\n") != std::string::npos)
          p.fail(kv.second.Mark(), fmt::format("'{}.headers.{}' holds a line break", path, k));
        static const std::set<std::string> kReserved = {"host", "content-length", "content-type",
                                                        "content-encoding", "transfer-encoding", "connection"};
        std::string lower = k;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (kReserved.count(lower))
          p.fail(kv.first.Mark(), fmt::format("'{}.headers.{}' is set by the sink itself", path, k));
        s.headers.emplace_back(std::move(k), std::move(v));
      }
    }
    static const std::set<std::string> kTypes = {"stdout", "file", "syslog", "webhook", "otlp"};
    if (!kTypes.count(s.type))
      p.fail(item["type"].Mark(),
             fmt::format("'{}.type' is '{}'; expected stdout, file, syslog, webhook or otlp", path, s.type));
    if (s.type == "file" && s.path.empty())
      p.fail(item.Mark(), fmt::format("'{}.path' is required for a file sink", path));
    if (s.type == "syslog" && s.address.empty())
      p.fail(item.Mark(), fmt::format("'{}.address' is required for a syslog sink (e.g. udp://127.0.0.1:514, "
                                      "tcp://127.0.0.1:514, unix:///dev/log)", path));
    if (s.type == "webhook" && s.url.empty())
      p.fail(item.Mark(), fmt::format("'{}.url' is required for a webhook sink (e.g. https://siem.example/ingest)", path));
    if (s.type == "otlp" && s.url.empty() == s.endpoint.empty())
      p.fail(item.Mark(), fmt::format("'{}': an otlp sink takes either 'endpoint' (e.g. http://127.0.0.1:4318, "
                                      "/v1/logs appended) or 'url' (the whole logs URL)", path));
    if (s.compress != "none" && s.compress != "zstd")
      p.fail(item["compress"].Mark(), fmt::format("'{}.compress' is '{}'; expected none or zstd", path, s.compress));
    if (!s.format.empty()) {
      if (s.type == "webhook" && s.format != "json" && s.format != "jsonl")
        p.fail(item["format"].Mark(), fmt::format("'{}.format' is '{}'; expected json or jsonl", path, s.format));
      else if (s.type == "syslog" && s.format != "rfc5424" && s.format != "rfc3164")
        p.fail(item["format"].Mark(), fmt::format("'{}.format' is '{}'; expected rfc5424 or rfc3164", path, s.format));
      else if (s.type != "webhook" && s.type != "syslog")
        p.fail(item["format"].Mark(), fmt::format("'{}.format' applies to webhook and syslog sinks only", path));
    }
    if (s.client_cert.empty() != s.client_key.empty())
      p.fail(item.Mark(), fmt::format("'{}': client_cert and client_key go together (mTLS)", path));
    if (s.timeout_ms == 0) p.fail(item["timeout_ms"].Mark(), fmt::format("'{}.timeout_ms' must be at least 1", path));
    for (size_t k = 0; k < s.kinds.size(); ++k) {
      const auto& all = all_event_kinds();
      if (std::find(all.begin(), all.end(), s.kinds[k]) == all.end())
        p.fail(item["kinds"][k].Mark(), fmt::format("'{}.kinds' has unknown kind '{}'", path, s.kinds[k]));
    }
    static const std::set<std::string> kSeverities = {"info", "low", "medium", "high", "critical"};
    if (!kSeverities.count(s.min_severity))
      p.fail(item["min_severity"].Mark(), fmt::format("'{}.min_severity' is '{}'; expected info, low, medium, "
                                                      "high or critical", path, s.min_severity));
    if (s.queue_max_mb == 0 || s.spool_max_mb == 0)
      p.fail(item.Mark(), fmt::format("'{}': queue_max_mb and spool_max_mb must be at least 1", path));
    if (s.max_files == 0) p.fail(item["max_files"].Mark(), fmt::format("'{}.max_files' must be at least 1", path));
    if (!s.name.empty() && !std::all_of(s.name.begin(), s.name.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        }))
      p.fail(item["name"].Mark(), fmt::format("'{}.name' '{}' may hold only a-z, 0-9, - and _", path, s.name));
    out.push_back(std::move(s));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    std::string name = out[i].name;
    if (name.empty()) {
      size_t same = std::count_if(out.begin(), out.end(), [&](auto& c) { return c.type == out[i].type; });
      name = same > 1 ? fmt::format("{}-{}", out[i].type, i + 1) : out[i].type;
    }
    if (!names.insert(name).second)
      p.fail(n[i].Mark(), fmt::format("'events.sinks[{}]': a second sink named '{}' (names must differ)", i, name));
    out[i].name = name;
  }
}

CaptureLevel capture_level(const Parser& p, const YAML::Node& n, const std::string& key) {
  std::string v;
  p.read(n, key, v);
  auto l = parse_capture_level(v);
  if (!l) p.fail(n.Mark(), fmt::format("'{}' must be metadata, headers or full, not '{}'", key, v));
  return *l;
}

// At most 64 rules: the mapper keeps which ones a connection matched in one word.
constexpr size_t kMaxCaptureRules = 64;

void parse_capture_rules(const Parser& p, const YAML::Node& n, std::vector<CaptureRule>& out) {
  if (!n.IsSequence()) p.fail(n.Mark(), "'capture.rules' must be a list of rules");
  if (n.size() > kMaxCaptureRules)
    p.fail(n.Mark(), fmt::format("'capture.rules' has {} rules; at most {}", n.size(), kMaxCaptureRules));
  out.clear();
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node& item = n[i];
    std::string path = fmt::format("capture.rules[{}]", i);
    p.expect_map(item, path, {"level", "binaries", "comms", "cgroups", "uids", "ports", "endpoints"});
    CaptureRule r;
    if (!item["level"]) p.fail(item.Mark(), fmt::format("'{}.level' is required (metadata, headers or full)", path));
    r.level = capture_level(p, item["level"], path + ".level");
    p.field(item, path, "binaries", r.binaries);
    p.field(item, path, "comms", r.comms);
    p.field(item, path, "cgroups", r.cgroups);
    p.field(item, path, "uids", r.uids);
    p.field(item, path, "ports", r.ports);
    p.field(item, path, "endpoints", r.endpoints);
    if (r.binaries.empty() && r.comms.empty() && r.cgroups.empty() && r.uids.empty() && r.ports.empty() &&
        r.endpoints.empty())
      p.fail(item.Mark(), fmt::format("'{}' selects nothing: give binaries, comms, cgroups, uids, ports or "
                                      "endpoints", path));
    for (size_t k = 0; k < r.endpoints.size(); ++k) {
      std::string_view e = r.endpoints[k];
      if (size_t sp = e.find(' '); sp != std::string_view::npos) e.remove_prefix(sp + 1);
      if (!e.starts_with("/") && !e.starts_with("*"))
        p.fail(item["endpoints"][k].Mark(), fmt::format("'{}.endpoints' has '{}'; expected a path template glob "
                                                        "such as '/api/users/*' or 'GET /api/*'", path, r.endpoints[k]));
    }
    out.push_back(std::move(r));
  }
}

Config parse_tree(const Parser& p, const YAML::Node& root) {
  Config c;
  c.events.kinds = all_event_kinds();
  c.events.sinks.resize(2);
  c.events.sinks[0].type = "stdout";
  c.events.sinks[1].type = "file";
  c.events.sinks[1].path = "/var/log/vigil/events.jsonl";
  if (!root || root.IsNull()) return c;
  p.expect_map(root, "", {"node_name", "data_dir", "control_socket", "capture", "events",
                          "audit", "policies", "metrics", "apimap", "kubernetes"});
  p.field(root, "", "node_name", c.node_name);
  p.field(root, "", "data_dir", c.data_dir);
  p.field(root, "", "control_socket", c.control_socket);
  if (auto n = root["capture"]; n && !n.IsNull()) {
    p.expect_map(n, "capture", {"http", "tls", "max_capture_bytes", "bodies", "exclude_comms", "level", "full_first",
                                "full_sample_every", "rules"});
    p.field(n, "capture", "http", c.capture.http);
    p.field(n, "capture", "tls", c.capture.tls);
    p.field(n, "capture", "max_capture_bytes", c.capture.max_capture_bytes);
    p.field(n, "capture", "bodies", c.capture.bodies);
    p.field(n, "capture", "exclude_comms", c.capture.exclude_comms);
    if (auto l = n["level"]; l) c.capture.level = capture_level(p, l, "capture.level");
    p.field(n, "capture", "full_first", c.capture.full_first);
    p.field(n, "capture", "full_sample_every", c.capture.full_sample_every);
    if (auto r = n["rules"]; r && !r.IsNull()) parse_capture_rules(p, r, c.capture.rules);
  }
  if (auto n = root["events"]; n && !n.IsNull()) {
    p.expect_map(n, "events", {"kinds", "api_call", "api_call_sample_every", "sinks"});
    p.field(n, "events", "kinds", c.events.kinds);
    p.field(n, "events", "api_call", c.events.api_call);
    if (!parse_api_call_emission(c.events.api_call))
      p.fail(n["api_call"].Mark(), fmt::format("'events.api_call' must be all, sampled or notable, not '{}'",
                                               c.events.api_call));
    p.field(n, "events", "api_call_sample_every", c.events.api_call_sample_every);
    if (c.events.api_call_sample_every == 0)
      p.fail(n["api_call_sample_every"].Mark(), "'events.api_call_sample_every' must be at least 1");
    for (size_t i = 0; i < c.events.kinds.size(); ++i) {
      const auto& kinds = all_event_kinds();
      if (std::find(kinds.begin(), kinds.end(), c.events.kinds[i]) == kinds.end())
        p.fail(n["kinds"][i].Mark(), fmt::format("'events.kinds' has unknown kind '{}'",
                                                 c.events.kinds[i]));
    }
    if (auto s = n["sinks"]; s && !s.IsNull()) parse_sinks(p, s, c.events.sinks);
  }
  if (auto n = root["policies"]; n && !n.IsNull()) {
    p.expect_map(n, "policies", {"dir", "pin_dir", "dns_ports", "dns_min_ttl"});
    p.field(n, "policies", "dir", c.policies.dir);
    p.field(n, "policies", "pin_dir", c.policies.pin_dir);
    p.field(n, "policies", "dns_min_ttl", c.policies.dns_min_ttl);
    if (auto ports = n["dns_ports"]; ports) {
      p.read(ports, "policies.dns_ports", c.policies.dns_ports);
      if (c.policies.dns_ports.empty()) p.fail(ports.Mark(), "'policies.dns_ports' must be a non-empty list of ports");
    }
  }
  if (auto n = root["audit"]; n && !n.IsNull()) {
    p.expect_map(n, "audit", {"key_file", "signing_key", "checkpoint_interval"});
    p.field(n, "audit", "key_file", c.audit.key_file);
    p.field(n, "audit", "signing_key", c.audit.signing_key);
    if (auto iv = n["checkpoint_interval"]; iv) {
      std::string text;
      p.read(iv, "audit.checkpoint_interval", text);
      uint64_t v = 0, unit = 1;
      std::string_view t = text;
      if (t.ends_with("s")) t.remove_suffix(1);
      else if (t.ends_with("m")) t.remove_suffix(1), unit = 60;
      else if (t.ends_with("h")) t.remove_suffix(1), unit = 3600;
      auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || v == 0 || v * unit > 86400)
        p.fail(iv.Mark(), fmt::format("'audit.checkpoint_interval' must be a duration like 60s, 5m or 1h "
                                      "(1s to 24h), got '{}'", text));
      c.audit.checkpoint_interval_s = static_cast<uint32_t>(v * unit);
    }
  }
  if (auto n = root["metrics"]; n && !n.IsNull()) {
    p.expect_map(n, "metrics", {"listen"});
    p.field(n, "metrics", "listen", c.metrics.listen);
  }
  if (auto n = root["apimap"]; n && !n.IsNull()) {
    p.expect_map(n, "apimap", {"enabled", "path_hints", "declared_specs", "max_endpoints"});
    p.field(n, "apimap", "enabled", c.apimap.enabled);
    p.field(n, "apimap", "path_hints", c.apimap.path_hints);
    p.field(n, "apimap", "declared_specs", c.apimap.declared_specs);
    p.field(n, "apimap", "max_endpoints", c.apimap.max_endpoints);
    if (c.apimap.max_endpoints == 0)
      p.fail(n["max_endpoints"].Mark(), "'apimap.max_endpoints' must be at least 1");
    for (size_t i = 0; i < c.apimap.path_hints.size(); ++i)
      if (c.apimap.path_hints[i].empty() || c.apimap.path_hints[i][0] != '/')
        p.fail(n["path_hints"][i].Mark(),
               "'apimap.path_hints' entries are paths starting with / (e.g. \"/api/v1/users/{id}\")");
  }
  if (auto n = root["kubernetes"]; n && !n.IsNull()) {
    p.expect_map(n, "kubernetes",
                 {"enabled", "api_server", "token_file", "ca_file", "labels", "max_pods", "allow_insecure_http"});
    if (auto e = n["enabled"]; e) {
      std::string v;
      p.read(e, "kubernetes.enabled", v);
      if (v != "auto" && v != "true" && v != "false")
        p.fail(e.Mark(), fmt::format("'kubernetes.enabled' is '{}'; expected auto, true or false", v));
      c.kubernetes.enabled = v;
    }
    p.field(n, "kubernetes", "api_server", c.kubernetes.api_server);
    if (!c.kubernetes.api_server.empty() && !c.kubernetes.api_server.starts_with("https://") &&
        !c.kubernetes.api_server.starts_with("http://"))
      p.fail(n["api_server"].Mark(), fmt::format("'kubernetes.api_server' '{}' must be an https:// (or http://) URL",
                                                 c.kubernetes.api_server));
    p.field(n, "kubernetes", "allow_insecure_http", c.kubernetes.allow_insecure_http);
    if (c.kubernetes.api_server.starts_with("http://") && !c.kubernetes.allow_insecure_http)
      p.fail(n["api_server"].Mark(),
             fmt::format("'kubernetes.api_server' '{}' is http://: the service account token would travel in clear "
                         "(set 'kubernetes.allow_insecure_http: true' for a test server)",
                         c.kubernetes.api_server));
    p.field(n, "kubernetes", "token_file", c.kubernetes.token_file);
    p.field(n, "kubernetes", "ca_file", c.kubernetes.ca_file);
    p.field(n, "kubernetes", "labels", c.kubernetes.labels);
    p.field(n, "kubernetes", "max_pods", c.kubernetes.max_pods);
    if (c.kubernetes.max_pods == 0) p.fail(n["max_pods"].Mark(), "'kubernetes.max_pods' must be at least 1");
  }
  if (c.capture.max_capture_bytes == 0 || c.capture.max_capture_bytes > 16384)
    p.fail(root["capture"]["max_capture_bytes"].Mark(),
           "'capture.max_capture_bytes' must be between 1 and 16384 (the kernel's per-syscall limit)");
  return c;
}

}  // namespace

bool Config::kind_enabled(std::string_view kind) const {
  return std::find(events.kinds.begin(), events.kinds.end(), kind) != events.kinds.end();
}

std::optional<ApiCallEmission> parse_api_call_emission(std::string_view s) {
  if (s == "all") return ApiCallEmission::kAll;
  if (s == "sampled") return ApiCallEmission::kSampled;
  if (s == "notable") return ApiCallEmission::kNotable;
  return std::nullopt;
}

std::optional<CaptureLevel> parse_capture_level(std::string_view s) {
  if (s == "metadata") return CaptureLevel::kMetadata;
  if (s == "headers") return CaptureLevel::kHeaders;
  if (s == "full") return CaptureLevel::kFull;
  return std::nullopt;
}

std::string_view to_string(CaptureLevel l) {
  switch (l) {
    case CaptureLevel::kMetadata: return "metadata";
    case CaptureLevel::kFull: return "full";
    default: return "headers";
  }
}

std::string_view to_string(ApiCallEmission e) {
  switch (e) {
    case ApiCallEmission::kSampled: return "sampled";
    case ApiCallEmission::kNotable: return "notable";
    default: return "all";
  }
}

const std::vector<std::string>& all_event_kinds() {
  static const std::vector<std::string> kKinds = {
      "connection", "api_call", "egress", "api_discovered", "finding", "policy", "lost", "checkpoint"};
  return kKinds;
}

std::string_view default_config_yaml() { return kDefaultYaml; }

Result<Config> parse_config(std::string_view yaml, std::string_view source) {
  auto docs = check_yaml(yaml, source);
  if (!docs) return docs.error();
  if (*docs > 1) return Error{fmt::format("{}: has {} YAML documents; a configuration is one", source, *docs)};
  Parser parser(source);
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    return parse_tree(parser, root);
  } catch (const ConfigError& e) {
    return Error{e.message};
  } catch (const YAML::Exception& e) {
    return Error{fmt::format("{}:{}:{}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg)};
  }
}

Result<Config> load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return os_error(fmt::format("read config file {}", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace vigil
