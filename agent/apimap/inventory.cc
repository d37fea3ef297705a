#include "agent/apimap/inventory.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include <fmt/ranges.h>

#include <fmt/format.h>

#include "agent/apimap/auth.h"
#include "agent/events/api_call.h"

namespace vigil::apimap {
namespace {

constexpr char kSep = '\x1f';
constexpr size_t kMaxExamples = 3, kMaxTypes = 4, kMaxRemotes = 4, kMaxIds = 16, kMaxClients = 8192;
constexpr size_t kMaxHost = 261;  // 253 bytes of name, ":65535"

const std::array<FindingInfo, kFindingKinds> kFindings = {{
    {"unauthenticated-sensitive-data", "high", "API3", "Unauthenticated endpoint returns sensitive data",
     "require authentication, or stop returning the listed data classes to anonymous callers"},
    {"credentials-over-plaintext", "high", "API8", "Credentials or tokens sent over plaintext HTTP",
     "serve and call this endpoint over TLS only; rotate credentials that crossed the network in clear"},
    {"secret-in-url", "medium", "API8", "Secret or token in the URL or query string",
     "move the secret to a header (Authorization) or the body: URLs end up in logs, proxies and histories"},
    {"jwt-alg-none", "critical", "API2", "JWT accepted with alg \"none\" (unsigned)",
     "reject unsigned tokens: pin the accepted algorithms in the verifier"},
    {"jwt-no-exp", "medium", "API2", "JWT without an expiry (exp)",
     "issue tokens with an exp claim and enforce it"},
    {"jwt-long-lifetime", "low", "API2", "JWT lifetime over 24 hours",
     "shorten token lifetimes (minutes to hours) and use refresh tokens"},
    {"basic-auth", "medium", "API2", "HTTP Basic authentication",
     "replace static passwords with tokens (OAuth2, mTLS) and make sure TLS is always on"},
    {"shadow-api", "medium", "API9", "Endpoint not in the declared API spec (shadow API)",
     "declare it in the spec (and review who owns it), or remove it"},
    {"zombie-api", "medium", "API9", "Deprecated endpoint still called (zombie API)",
     "find the callers (vigil map show), migrate them, then retire the endpoint"},
    {"sequential-ids", "low", "API1", "Sequential integer ids on an unauthenticated endpoint",
     "check object-level authorization; prefer unguessable ids (UUIDs)"},
}};

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

std::string_view media_type(std::string_view ct) {
  size_t semi = ct.find(';');
  ct = ct.substr(0, semi);
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  return ct;
}

bool is_json(std::string_view ct) {
  std::string m = lower(media_type(ct));
  return m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"));
}

void add_capped(std::vector<std::string>& v, std::string_view s, size_t cap) {
  if (s.empty() || v.size() >= cap) return;
  for (const auto& x : v)
    if (x == s) return;
  v.emplace_back(s);
}

template <typename T>
std::vector<T> get_vec(const nlohmann::json& j, const char* k) {
  auto it = j.find(k);
  if (it == j.end() || !it->is_array()) return {};
  std::vector<T> out;
  for (const auto& v : *it)
    if constexpr (std::is_same_v<T, std::string>) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    } else {
      if (v.is_number()) out.push_back(v.get<T>());
    }
  return out;
}

bool no_auth(uint16_t m) { return m == kAuthNone; }

bool is_alg_none(const std::string& a) {
  return a.size() == 4 && (a[0] | 0x20) == 'n' && (a[1] | 0x20) == 'o' && (a[2] | 0x20) == 'n' && (a[3] | 0x20) == 'e';
}

// Header values worth scanning: not credentials (those are auth schemes) and not
// the fixed protocol fields every call has.
bool scanned_header(std::string_view k) {
  if (secrets::is_secret_header(k)) return false;
  switch (k.size()) {
    case 4: return k != "host" && k != "date";
    case 6: return k != "accept" && k != "server";
    case 10: return k != "user-agent" && k != "connection";
    case 12: return k != "content-type";
    case 14: return k != "content-length";
    default: return true;
  }
}

// What a call's credentials were, named without their values ("" for none).
std::string credentials_evidence(uint16_t schemes, const std::string& key_name, const std::string& cookie_name) {
  if (schemes & kAuthBasic) return "Authorization: Basic";
  if (schemes & kAuthJwt) return "Authorization: Bearer (JWT)";
  if (schemes & kAuthBearer) return "Authorization: Bearer";
  if (schemes & kAuthApiKeyHeader) return "API key in header " + key_name;
  if (schemes & kAuthApiKeyQuery) return "API key in query parameter " + key_name;
  if (schemes & kAuthCookie) return "session cookie " + cookie_name;
  return {};
}

// Classes looked for in URLs: secrets only (an email in a path is an id, not a leak).
constexpr uint16_t kUrlSecretClasses = kSecretClasses & ~(1u << kPasswordField);

}  // namespace

const FindingInfo& finding_info(int kind) { return kFindings[static_cast<size_t>(kind)]; }

std::string service_name(const ProcessRef& p) {
  // In a cluster: the owning workload, so a Deployment's pods are one service.
  if (!p.pod.empty()) return p.k8s_namespace + "/" + (p.workload.empty() ? p.pod : p.workload);
  std::string_view cg = p.cgroup;
  // The systemd unit owning the process: the last ".service" component.
  for (size_t end = cg.size(); end > 0;) {
    size_t slash = cg.rfind('/', end - 1);
    std::string_view comp = cg.substr(slash == std::string_view::npos ? 0 : slash + 1,
                                      end - (slash == std::string_view::npos ? 0 : slash + 1));
    if (comp.ends_with(".service") && !comp.starts_with("user@")) {
      if (!p.container_id.empty()) break;
      return std::string(comp);
    }
    if (slash == std::string_view::npos) break;
    end = slash;
  }
  if (!p.container_id.empty()) return "container:" + p.container_id.substr(0, 12);
  std::string_view exe = p.exe;
  if (auto slash = exe.rfind('/'); slash != std::string_view::npos) exe.remove_prefix(slash + 1);
  if (!exe.empty()) return std::string(exe);
  return p.comm.empty() ? "unknown" : p.comm;
}

// --- Endpoint -----------------------------------------------------------------

std::string Endpoint::key() const {
  std::string k;
  k.reserve(service.size() + role.size() + host.size() + method.size() + path.size() + protocol.size() + 5);
  for (const std::string* s : {&service, &role, &host, &method, &path}) {
    k += *s;
    k += kSep;
  }
  k += protocol;
  return k;
}

bool Endpoint::redirect_only() const {
  return !status.empty() && std::all_of(status.begin(), status.end(), [](auto& s) { return s.first >= 300 && s.first < 400; });
}

nlohmann::json Endpoint::to_json() const {
  nlohmann::json st = nlohmann::json::object();
  for (const auto& [code, n] : status) st[std::to_string(code)] = n;
  nlohmann::json sc = nlohmann::json::object();
  for (int c = 0; c < kSensitiveClassCount; ++c)
    if (c < static_cast<int>(sensitive_counts.size()) && sensitive_counts[c])
      sc[std::string(sensitive_name(c))] = sensitive_counts[c];
  nlohmann::json ps = nlohmann::json::array();
  for (const auto& [name, t] : params) ps.push_back({{"name", name}, {"type", type_name(t)}, {"mask", t}});
  nlohmann::json rem = nlohmann::json::array();
  for (const auto& [a, p] : remotes) rem.push_back({{"addr", a}, {"port", p}});
  Risk r = risk_of(*this);
  auto ms = [&](double q) { return std::round(latency.quantile(q) / 1e3) / 1e3; };
  nlohmann::json j = {
      {"service", service},
      {"role", role},
      {"host", host},
      {"method", method},
      {"path", path},
      {"protocol", protocol},
      {"tls", tls_count > 0},
      {"tls_calls", tls_count},
      {"count", count},
      {"status", st},
      {"latency_ms", {{"p50", ms(0.5)}, {"p95", ms(0.95)}, {"p99", ms(0.99)}}},
      {"auth", auth_names(auth)},
      {"plaintext_auth", auth_names(plaintext_auth)},
      {"sensitive", sensitive_names(sensitive)},
      {"sensitive_counts", sc},
      {"response_sensitive", sensitive_names(resp_sensitive)},
      {"first_seen", format_rfc3339_ns(first_seen)},
      {"last_seen", format_rfc3339_ns(last_seen)},
      {"first_seen_ns", first_seen},
      {"last_seen_ns", last_seen},
      {"examples", examples},
      {"risk", {{"score", r.score}, {"reasons", r.reasons}}},
      {"params", ps},
      {"request", {{"content_types", req_types}, {"schema", req_schema.to_state()}}},
      {"response", {{"content_types", resp_types}, {"schema", resp_schema.to_state()}}},
      {"latency_sketch", latency.to_json()},
      {"redirect_only", redirect_only()},
      {"declared", declared},
      {"deprecated", deprecated},
      {"raised", raised},
  };
  if (!remotes.empty()) j["remotes"] = rem;
  if (!exe.empty()) j["exe"] = exe;
  if (!key_name.empty()) j["api_key_name"] = key_name;
  if (!cookie_name.empty()) j["cookie_name"] = cookie_name;
  if (!url_secrets.empty()) j["url_secrets"] = url_secrets;
  if (!jwt_algs.empty())
    j["jwt"] = {{"algs", jwt_algs}, {"issuers", jwt_issuers}, {"no_exp", jwt_no_exp},
                {"max_lifetime_s", jwt_max_lifetime_s}};
  if (!int_ids.empty()) j["int_ids"] = int_ids;
  return j;
}

std::optional<Endpoint> Endpoint::from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  Endpoint e;
  try {
    e.service = j.at("service").get<std::string>();
    e.role = j.at("role").get<std::string>();
    e.host = j.value("host", "");
    e.method = j.at("method").get<std::string>();
    e.path = j.at("path").get<std::string>();
    e.protocol = j.value("protocol", "http/1.1");
    e.count = j.value("count", uint64_t{0});
    e.tls_count = j.value("tls_calls", j.value("tls", false) ? e.count : 0);
    const nlohmann::json status = j.value("status", nlohmann::json::object());
    for (const auto& [code, n] : status.items())
      e.status.emplace_back(static_cast<uint16_t>(std::stoi(code)), n.get<uint64_t>());
    if (auto s = j.find("latency_sketch"); s != j.end()) Sketch::from_json(*s, e.latency);
    const auto& req = j.value("request", nlohmann::json::object());
    const auto& resp = j.value("response", nlohmann::json::object());
    e.req_types = get_vec<std::string>(req, "content_types");
    e.resp_types = get_vec<std::string>(resp, "content_types");
    if (auto s = req.find("schema"); s != req.end()) Schema::from_state(*s, e.req_schema);
    if (auto s = resp.find("schema"); s != resp.end()) Schema::from_state(*s, e.resp_schema);
    e.auth = auth_mask_from_names(get_vec<std::string>(j, "auth"));
    e.plaintext_auth = auth_mask_from_names(get_vec<std::string>(j, "plaintext_auth"));
    e.sensitive = sensitive_mask_from_names(get_vec<std::string>(j, "sensitive"));
    e.resp_sensitive = sensitive_mask_from_names(get_vec<std::string>(j, "response_sensitive"));
    e.sensitive_counts.assign(kSensitiveClassCount, 0);
    const nlohmann::json counts = j.value("sensitive_counts", nlohmann::json::object());
    for (const auto& [name, n] : counts.items())
      for (int c = 0; c < kSensitiveClassCount; ++c)
        if (sensitive_name(c) == name) e.sensitive_counts[c] = n.get<uint64_t>();
    e.first_seen = j.value("first_seen_ns", uint64_t{0});
    e.last_seen = j.value("last_seen_ns", uint64_t{0});
    e.examples = get_vec<std::string>(j, "examples");
    for (const auto& p : j.value("params", nlohmann::json::array()))
      e.params.emplace_back(p.value("name", "id"), p.value("mask", uint8_t{kTypeString}));
    e.int_ids = get_vec<int64_t>(j, "int_ids");
    for (const auto& r : j.value("remotes", nlohmann::json::array()))
      e.remotes.emplace_back(r.value("addr", ""), r.value("port", uint16_t{0}));
    e.exe = j.value("exe", "");
    e.key_name = j.value("api_key_name", "");
    e.cookie_name = j.value("cookie_name", "");
    e.url_secrets = get_vec<std::string>(j, "url_secrets");
    if (auto jw = j.find("jwt"); jw != j.end() && jw->is_object()) {
      e.jwt_algs = get_vec<std::string>(*jw, "algs");
      e.jwt_issuers = get_vec<std::string>(*jw, "issuers");
      e.jwt_no_exp = jw->value("no_exp", false);
      e.jwt_max_lifetime_s = jw->value("max_lifetime_s", int64_t{0});
    }
    e.declared = j.value("declared", false);
    e.deprecated = j.value("deprecated", false);
    e.raised = j.value("raised", uint16_t{0});
    e.active = true;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return e;
}

void Endpoint::merge(const Endpoint& o) {
  count += o.count;
  tls_count += o.tls_count;
  for (const auto& [code, n] : o.status) {
    auto it = std::find_if(status.begin(), status.end(), [&](auto& s) { return s.first == code; });
    if (it == status.end()) status.emplace_back(code, n);
    else it->second += n;
  }
  latency.merge(o.latency);
  for (const auto& t : o.req_types) add_capped(req_types, t, kMaxTypes);
  for (const auto& t : o.resp_types) add_capped(resp_types, t, kMaxTypes);
  auth |= o.auth;
  plaintext_auth |= o.plaintext_auth;
  sensitive |= o.sensitive;
  resp_sensitive |= o.resp_sensitive;
  sensitive_counts.resize(kSensitiveClassCount, 0);
  for (size_t c = 0; c < o.sensitive_counts.size() && c < sensitive_counts.size(); ++c)
    sensitive_counts[c] += o.sensitive_counts[c];
  if (key_name.empty()) key_name = o.key_name;
  if (cookie_name.empty()) cookie_name = o.cookie_name;
  for (const auto& a : o.jwt_algs) add_capped(jwt_algs, a, kMaxTypes);
  for (const auto& i : o.jwt_issuers) add_capped(jwt_issuers, i, kMaxTypes);
  jwt_no_exp = jwt_no_exp || o.jwt_no_exp;
  jwt_max_lifetime_s = std::max(jwt_max_lifetime_s, o.jwt_max_lifetime_s);
  first_seen = first_seen && o.first_seen ? std::min(first_seen, o.first_seen) : std::max(first_seen, o.first_seen);
  last_seen = std::max(last_seen, o.last_seen);
  for (const auto& x : o.examples) add_capped(examples, x, kMaxExamples);
  for (const auto& [name, t] : o.params) {
    auto it = std::find_if(params.begin(), params.end(), [&](auto& p) { return p.first == name; });
    if (it == params.end()) params.emplace_back(name, t);
    else it->second |= t;
  }
  for (int64_t id : o.int_ids)
    if (int_ids.size() < kMaxIds && std::find(int_ids.begin(), int_ids.end(), id) == int_ids.end())
      int_ids.push_back(id);
  req_schema.merge(o.req_schema);
  resp_schema.merge(o.resp_schema);
  for (const auto& r : o.remotes)
    if (remotes.size() < kMaxRemotes && std::find(remotes.begin(), remotes.end(), r) == remotes.end())
      remotes.push_back(r);
  if (exe.empty()) exe = o.exe;
  for (const auto& s : o.url_secrets) add_capped(url_secrets, s, kMaxTypes);
  declared = declared || o.declared;
  deprecated = deprecated || o.deprecated;
  raised |= o.raised;
  active = active || o.active;
}

size_t Endpoint::memory_bytes() const {
  size_t n = sizeof(*this) + latency.memory_bytes() - sizeof(Sketch) + req_schema.memory_bytes() +
             resp_schema.memory_bytes() - 2 * sizeof(Schema);
  for (const std::string* s : {&service, &role, &host, &method, &path, &protocol, &exe}) n += s->capacity();
  for (const auto& x : examples) n += sizeof(x) + x.capacity();
  n += status.capacity() * sizeof(status[0]) + sensitive_counts.capacity() * 8 + params.capacity() * 40 +
       int_ids.capacity() * 8 + (req_types.size() + resp_types.size()) * 48 + remotes.size() * 48;
  return n;
}

bool sequential_ids(const Endpoint& e) {
  if (e.int_ids.size() < 5) return false;
  auto [lo, hi] = std::minmax_element(e.int_ids.begin(), e.int_ids.end());
  return *hi - *lo + 1 <= static_cast<int64_t>(2 * e.int_ids.size());
}

Risk risk_of(const Endpoint& e) {
  Risk r;
  auto add = [&](int points, std::string why) {
    r.score += points;
    r.reasons.push_back(fmt::format("+{} {}", points, why));
  };
  bool server = e.role == "server";
  constexpr uint16_t kHigh = (1u << kPaymentCard) | (1u << kUsSsn) | (1u << kIban) | kSecretClasses;
  uint16_t personal = e.sensitive & ~kHigh;
  if (server && no_auth(e.auth) && e.resp_sensitive)
    add(4, fmt::format("returns sensitive data ({}) without authentication",
                       fmt::join(sensitive_names(e.resp_sensitive), ", ")));
  else if (server && no_auth(e.auth))
    add(2, "no authentication seen");
  if (e.sensitive & kHigh) add(2, fmt::format("carries {}", fmt::join(sensitive_names(e.sensitive & kHigh), ", ")));
  else if (personal) add(1, fmt::format("carries personal data ({})", fmt::join(sensitive_names(personal), ", ")));
  if (e.plaintext_auth & ~kAuthNone) add(3, "credentials sent over plaintext HTTP");
  if (!e.url_secrets.empty()) add(2, fmt::format("secrets in the URL ({})", fmt::join(e.url_secrets, ", ")));
  bool alg_none = std::any_of(e.jwt_algs.begin(), e.jwt_algs.end(), is_alg_none);
  if (alg_none) add(3, "JWT with alg none");
  if (e.jwt_no_exp) add(1, "JWT without exp");
  if (e.jwt_max_lifetime_s > 86400) add(1, "JWT lifetime over 24 h");
  if (e.auth & kAuthBasic) add(1, "HTTP Basic authentication");
  if (e.deprecated) add(2, "deprecated in the declared spec, still called");
  if (server && !e.declared && (e.raised & (1u << kFindShadow))) add(1, "not in the declared spec");
  if (server && no_auth(e.auth) && sequential_ids(e)) add(1, "sequential integer ids without authentication");
  r.score = std::min(r.score, 10);
  return r;
}

// --- Finding, ServiceStats -------------------------------------------------------

std::string Finding::key() const {
  return fmt::format("{}{}{}{}{}{}{}{}{}", finding_info(kind).id, kSep, service, kSep, method, kSep, host, kSep, path);
}

nlohmann::json Finding::to_json() const {
  const FindingInfo& f = finding_info(kind);
  return {{"id", f.id},
          {"severity", f.severity},
          {"title", f.title},
          {"owasp", f.owasp},
          {"service", service},
          {"endpoint", {{"method", method}, {"host", host}, {"path", path}}},
          {"evidence", evidence},
          {"advice", f.advice},
          {"first_seen", format_rfc3339_ns(first_seen)},
          {"first_seen_ns", first_seen},
          {"count", count}};
}

std::optional<Finding> Finding::from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  Finding f;
  std::string id = j.value("id", "");
  f.kind = -1;
  for (int k = 0; k < kFindingKinds; ++k)
    if (finding_info(k).id == id) f.kind = k;
  if (f.kind < 0) return std::nullopt;
  f.service = j.value("service", "");
  const auto& ep = j.value("endpoint", nlohmann::json::object());
  f.method = ep.value("method", "");
  f.host = ep.value("host", "");
  f.path = ep.value("path", "");
  f.evidence = j.value("evidence", "");
  f.first_seen = j.value("first_seen_ns", uint64_t{0});
  f.count = j.value("count", uint64_t{0});
  return f;
}

nlohmann::json ServiceStats::to_json(const std::string& name) const {
  return {{"name", name}, {"exe", exe}, {"unmatched_404", unmatched_404}};
}

// --- Inventory -------------------------------------------------------------------

Inventory::Inventory(InventoryOptions o, std::unique_ptr<SensitiveScanner> scanner)
    : o_(std::move(o)), scanner_(std::move(scanner)) {
  for (const auto& h : o_.path_hints) templater_.add_pattern(h, false);
  for (const auto& d : o_.declared) templater_.add_pattern(d.path, true);
}

const std::string& Inventory::service_of(const ProcessRef& p) {
  auto& slot = service_cache_[p.pid];
  if (slot.second.empty() || slot.first != p.exe) {
    if (service_cache_.size() > 65536) {
      service_cache_.clear();
      return service_of(p);
    }
    slot = {p.exe, service_name(p)};
  }
  return slot.second;
}

bool Inventory::scanner(const std::string& client) const {
  auto it = clients_.find(client);
  return it != clients_.end() && it->second.scanner();
}

void Inventory::mark_dirty(Endpoint& e) {
  if (e.dirty) return;
  e.dirty = true;
  dirty_.insert(e.key());
}

// Header-only calls repeat the same query and header values call after call
// ("page=2&limit=50", one client's x-request-source): a small direct-mapped cache
// of short scan buffers (compared whole, so a hit is exact) spares the scan.
void Inventory::scan_cached(const std::array<size_t, 2>& cuts, std::array<uint16_t, 3>& found) {
  if (scan_buf_.size() > kScanCacheMaxBytes) {
    scanner_->scan_parts(scan_buf_, cuts, found);
    return;
  }
  size_t h = StringViewHash{}(scan_buf_) ^ (cuts[0] * 0x9e3779b97f4a7c15ull) ^ (cuts[1] << 20);
  ScanCacheSlot& slot = scan_cache_[h % scan_cache_.size()];
  if (slot.cuts == cuts && slot.text == scan_buf_) {
    found = slot.found;
    return;
  }
  scanner_->scan_parts(scan_buf_, cuts, found);
  slot.text = scan_buf_;
  slot.cuts = cuts;
  slot.found = found;
}

Endpoint& Inventory::endpoint_for(const CallInput& in, const std::string& service, bool learn) {
  // The key is built around the scope (service, role, host) the templater sees.
  std::string& key = key_buf_;
  key.assign(service);
  key += kSep;
  key.append(in.role);
  key += kSep;
  size_t host_at = key.size();
  if (in.host.empty()) {
    key += in.remote_addr;
    key += ':';
    key += std::to_string(in.remote_port);
  } else {
    key.append(in.host.substr(0, kMaxHost));  // a name is at most 253 bytes (+ ":port")
    for (size_t i = host_at; i < key.size(); ++i)
      if (key[i] >= 'A' && key[i] <= 'Z') key[i] = static_cast<char>(key[i] - 'A' + 'a');
  }
  size_t scope_len = key.size();
  Templated& t = templated_;
  if (in.protocol == "grpc") {
    t.path.assign(in.path);  // /package.Service/Method: never templated
    t.params.clear();
    t.collapsed = false;
    resolved_ = &t;
  } else {
    resolved_ = &templater_.resolve(std::string_view(key).substr(0, scope_len), in.path, learn, t);
  }
  if (resolved_->collapsed) retemplate_scope(key.substr(0, scope_len));
  const std::string& tmpl = resolved_->path;
  key += kSep;
  key.append(in.method);
  key += kSep;
  key += tmpl;
  key += kSep;
  key.append(in.protocol);
  auto it = map_.find(key);
  if (it != map_.end()) return *it->second;
  std::string scope = key.substr(0, scope_len);
  auto e = std::make_unique<Endpoint>();
  e->service = service;
  e->role = std::string(in.role);
  e->host = scope.substr(host_at);
  e->method = std::string(in.method);
  e->path = tmpl;
  e->protocol = std::string(in.protocol);
  e->sensitive_counts.assign(kSensitiveClassCount, 0);
  e->first_seen = in.wall_ns;
  for (const auto& d : o_.declared)
    if (d.method == e->method && same_route(e->path, d.path)) {
      e->declared = true;
      e->deprecated = e->deprecated || d.deprecated;
    }
  Endpoint& ref = *e;
  by_scope_[scope].push_back(&ref);
  map_.emplace(key_buf_, std::move(e));
  return ref;
}

void Inventory::retemplate_scope(const std::string& scope) {
  auto it = by_scope_.find(scope);
  if (it == by_scope_.end()) return;
  collapsed_dirty_ = true;
  std::vector<Endpoint*> keep;
  for (Endpoint* e : it->second) {
    std::string path = templater_.retemplate(scope, e->path);
    if (path == e->path) {
      keep.push_back(e);
      continue;
    }
    std::string old_key = e->key();
    auto old = map_.find(old_key);
    std::unique_ptr<Endpoint> owned = std::move(old.value());
    map_.erase(old);
    e->path = path;
    std::string new_key = e->key();
    auto existing = map_.find(new_key);
    if (existing != map_.end()) {
      existing->second->merge(*e);
      dirty_.insert(new_key);
      if (e->active) --active_;
      if (e->active && !existing->second->active) ++active_;
      existing->second->active = existing->second->active || e->active;
    } else {
      map_.emplace(new_key, std::move(owned));
      keep.push_back(e);
      dirty_.insert(new_key);
    }
    removed_.push_back(old_key);
    dirty_.erase(old_key);
  }
  it->second = std::move(keep);
}

CallResult Inventory::observe(const CallInput& in, const Emit& emit) {
  ++calls_;
  CallResult out;
  const uint64_t findings_before = new_findings_;
  const protocols::Exchange& x = *in.exchange;
  static const ProcessRef kNobody;
  const std::string& service = service_of(in.process ? *in.process : kNobody);
  bool not_found = in.status == 404 || in.status == 405;

  // Who is asking: the remote address when we serve; when we call, this binary from
  // its source address (the same client as the server side sees it).
  std::string& client = client_buf_;
  if (in.role == "server") {
    client.assign(in.remote_addr);
  } else {
    client.assign(service);
    client += kSep;
    client.append(in.local_addr);
  }
  if (clients_.size() > kMaxClients) clients_.clear();
  auto cit = clients_.find(client);
  if (cit == clients_.end()) cit = clients_.emplace(client, ClientStats{}).first;
  ClientStats& cs = cit.value();
  ++cs.calls;
  if (not_found) ++cs.not_found;
  bool from_scanner = cs.scanner();

  Endpoint& e = endpoint_for(in, service, !not_found && !from_scanner);
  out.endpoint = e.path;
  const std::vector<TemplateParam>& params = resolved_->params;
  if (not_found && !e.active) ++services_[service].unmatched_404;

  // How much of the call to look at: metadata (the URL), headers, full (bodies).
  const CaptureLevel level =
      in.capture ? in.capture->for_call(in.scope, in.method, e.path, e.count) : CaptureLevel::kFull;
  out.level = level;
  const bool see_headers = level != CaptureLevel::kMetadata, see_bodies = level == CaptureLevel::kFull;

  // Auth, from the raw request (before redaction). Without the headers only a key
  // in the query can be seen: "none" is not known then.
  static const protocols::Headers kNoHeaders;
  AuthSeen auth = detect_auth(see_headers ? x.request.headers : kNoHeaders, in.query);
  if (!see_headers) auth.schemes &= static_cast<uint16_t>(~kAuthNone);

  // Sensitive data: headers (not the credential ones: those are auth), query, bodies.
  // One scan over [query | request headers and body | response headers and body];
  // where a match starts says which part it was in.
  uint16_t req_sensitive = 0, resp_sensitive = 0, url_sensitive = 0;
  if (scanner_) {
    scan_buf_.clear();
    scan_buf_.append(in.query);
    scan_buf_ += '\n';
    size_t query_end = scan_buf_.size();
    auto gather = [&](const protocols::Message& m) {
      if (see_headers)
        for (const auto& [k, v] : m.headers) {
          if (!scanned_header(k)) continue;
          scan_buf_ += v;
          scan_buf_ += '\n';
        }
      if (see_bodies) scan_buf_ += m.body;
      scan_buf_ += '\n';
    };
    gather(x.request);
    size_t resp_start = scan_buf_.size();
    gather(x.response);
    std::array<size_t, 2> cuts = {query_end, resp_start};
    std::array<uint16_t, 3> found{};
    // Nothing but separators (header-only calls with the usual headers): no pass at all.
    if (scan_buf_.size() > 3) scan_cached(cuts, found);
    url_sensitive = found[0] & kUrlSecretClasses;
    req_sensitive = found[0] | found[1];
    resp_sensitive = found[2];
  }
  out.sensitive = resp_sensitive | req_sensitive;

  // Stats.
  ++e.count;
  if (in.tls) ++e.tls_count;
  e.last_seen = std::max(e.last_seen, in.wall_ns);
  auto st = std::find_if(e.status.begin(), e.status.end(), [&](auto& s) { return s.first == in.status; });
  if (st == e.status.end()) e.status.emplace_back(static_cast<uint16_t>(in.status), 1);
  else ++st->second;
  e.latency.add(static_cast<double>(in.latency_ns));
  std::string_view req_ct, resp_ct;
  if (see_headers) req_ct = x.request.header("content-type"), resp_ct = x.response.header("content-type");
  if (e.req_types.size() < kMaxTypes && !req_ct.empty()) add_capped(e.req_types, media_type(req_ct), kMaxTypes);
  if (e.resp_types.size() < kMaxTypes && !resp_ct.empty()) add_capped(e.resp_types, media_type(resp_ct), kMaxTypes);
  e.auth |= auth.schemes;
  if (!in.tls) e.plaintext_auth |= auth.schemes;
  if (!auth.key_name.empty() && e.key_name.empty()) e.key_name = auth.key_name;
  if (!auth.cookie_name.empty() && e.cookie_name.empty()) e.cookie_name = auth.cookie_name;
  std::string jwt_evidence;
  if (auth.jwt) {
    add_capped(e.jwt_algs, auth.jwt->alg, kMaxTypes);
    if (!auth.jwt->iss.empty()) add_capped(e.jwt_issuers, auth.jwt->iss, kMaxTypes);
    if (!auth.jwt->exp) e.jwt_no_exp = true;
    if (auth.jwt->exp) {
      int64_t from = auth.jwt->iat ? *auth.jwt->iat : static_cast<int64_t>(in.wall_ns / 1'000'000'000ull);
      // Both within ±2^53 (parse_jwt): the difference cannot overflow.
      e.jwt_max_lifetime_s = std::max(e.jwt_max_lifetime_s, *auth.jwt->exp - from);
    }
  }
  e.sensitive |= out.sensitive;
  if (in.status < 400) e.resp_sensitive |= resp_sensitive;
  if (out.sensitive)
    for (int c = 0; c < kSensitiveClassCount; ++c)
      if (out.sensitive & (1u << c)) ++e.sensitive_counts[c];
  for (const auto& p : params) {
    auto it = std::find_if(e.params.begin(), e.params.end(), [&](auto& q) { return q.first == p.name; });
    if (it == e.params.end()) e.params.emplace_back(p.name, p.type);
    else it->second |= p.type;
    if (p.int_value >= 0 && e.int_ids.size() < kMaxIds &&
        std::find(e.int_ids.begin(), e.int_ids.end(), p.int_value) == e.int_ids.end())
      e.int_ids.push_back(p.int_value);
  }
  // Examples are shown and stored: token-shaped segments hidden, as in events.
  if (e.examples.size() < kMaxExamples) {
    std::string ex = secrets::redact_path(in.path);
    size_t n = ex.size();
    if (std::none_of(e.examples.begin(), e.examples.end(), [&](const std::string& old) {
          return old.starts_with(ex) && (old.size() == n || old[n] == '?');
        })) {
      if (!in.query.empty()) ex += "?" + redact_query(in.query);
      add_capped(e.examples, ex, kMaxExamples);
    }
  }
  if (in.role == "client" && e.remotes.size() < kMaxRemotes && !in.remote_addr.empty()) {
    std::pair<std::string, uint16_t> r{std::string(in.remote_addr), in.remote_port};
    if (std::find(e.remotes.begin(), e.remotes.end(), r) == e.remotes.end()) e.remotes.push_back(std::move(r));
  }
  if (e.exe.empty() && in.process) e.exe = in.process->exe;
  // Schemas converge: every body at first, then a sample.
  if (see_bodies && !not_found && (!x.request.body.empty() || !x.response.body.empty())) {
    uint64_t tries = e.schema_tries++;
    if (tries < o_.schema_samples || tries % o_.schema_every == 0) {
      if (!x.request.body.empty() && !x.request.truncated && is_json(req_ct)) e.req_schema.observe(x.request.body);
      if (!x.response.body.empty() && !x.response.truncated && is_json(resp_ct) && in.status < 300)
        e.resp_schema.observe(x.response.body);
    }
  }
  bool url_secret = false;
  if (auth.schemes & kAuthApiKeyQuery) {
    add_capped(e.url_secrets, "query parameter " + auth.key_name, kMaxTypes);
    url_secret = true;
  }
  if (url_sensitive) {
    for (const auto& n : sensitive_names(url_sensitive)) add_capped(e.url_secrets, n + " in the query", kMaxTypes);
    url_secret = true;
  }

  // Named only when a plaintext credentials finding may be raised (strings cost per call).
  static const std::string kAlreadyRaised = "(raised)";
  std::string auth_evidence;
  bool credentials = (auth.schemes & ~kAuthNone) || (req_sensitive & (1u << kPasswordField));
  if (!in.tls && credentials) {
    if (e.raised & (1u << kFindPlaintextCredentials)) {
      auth_evidence = kAlreadyRaised;
    } else {
      auth_evidence = credentials_evidence(auth.schemes, auth.key_name, auth.cookie_name);
      if (auth_evidence.empty()) auth_evidence = "a password field in the request body";
    }
  }

  if (!not_found && !from_scanner && !e.active) {
    if (e.candidates.size() < 2 && std::find(e.candidates.begin(), e.candidates.end(), client) == e.candidates.end())
      e.candidates.push_back(client);
  }
  if (e.active) {
    mark_dirty(e);
    check_findings(e, in, auth.schemes, resp_sensitive, auth_evidence, url_secret, emit);
  }  // pending: findings wait for the promotion, which judges what the held-back calls showed
  out.first = e.count == 1;
  out.finding = new_findings_ != findings_before;
  if (map_.size() > o_.max_endpoints) evict();
  return out;
}

void Inventory::check_findings(Endpoint& e, const CallInput& in, uint16_t call_auth, uint16_t resp_sensitive,
                               const std::string& evidence_auth, bool url_secret, const Emit& emit) {
  bool server = e.role == "server";
  auto hit = [&](int kind, auto&& evidence) {
    if (e.raised & (1u << kind)) {
      Finding*& ref = e.finding_refs[kind];
      if (!ref) {  // restored from the store: find it once
        Finding f;
        f.kind = kind;
        f.service = e.service;
        f.method = e.method;
        f.host = e.host;
        f.path = e.path;
        auto it = findings_.find(f.key());
        if (it == findings_.end()) return;
        ref = &it->second;
      }
      ++ref->count;
      if (!ref->dirty) {
        ref->dirty = true;
        dirty_findings_.insert(ref->key());
      }
      return;
    }
    raise(e, kind, evidence(), in.wall_ns, emit);
  };
  if (server && no_auth(call_auth) && resp_sensitive && in.status < 400)
    hit(kFindUnauthSensitive, [&] {
      return fmt::format("responses carry {} to callers that sent no credentials",
                         fmt::join(sensitive_names(resp_sensitive), ", "));
    });
  if (!in.tls && !evidence_auth.empty())
    hit(kFindPlaintextCredentials, [&] { return evidence_auth + " over plaintext HTTP"; });
  if (url_secret) hit(kFindSecretInUrl, [&] { return fmt::format("{}", fmt::join(e.url_secrets, ", ")); });
  if (call_auth & kAuthJwt) {
    bool none = std::any_of(e.jwt_algs.begin(), e.jwt_algs.end(), is_alg_none);
    if (none) hit(kFindJwtAlgNone, [&] { return std::string("a bearer JWT whose header says alg: none"); });
    if (e.jwt_no_exp) hit(kFindJwtNoExp, [&] { return std::string("a bearer JWT without an exp claim"); });
    if (e.jwt_max_lifetime_s > 86400)
      hit(kFindJwtLongLifetime, [&] { return fmt::format("a bearer JWT valid for {} h", e.jwt_max_lifetime_s / 3600); });
  }
  if (call_auth & kAuthBasic) hit(kFindBasicAuth, [&] { return std::string("Authorization: Basic"); });
  if (server && !o_.declared.empty() && !e.declared && in.status < 400)
    hit(kFindShadow, [&] { return fmt::format("{} {} is in none of the declared specs", e.method, e.path); });
  if (server && e.deprecated)
    hit(kFindZombie, [&] { return fmt::format("{} {} is deprecated in the declared spec", e.method, e.path); });
  if (server && no_auth(e.auth) && sequential_ids(e))
    hit(kFindSequentialIds, [&] {
      auto [lo, hi] = std::minmax_element(e.int_ids.begin(), e.int_ids.end());
      return fmt::format("{} distinct integer ids between {} and {}, no credentials", e.int_ids.size(), *lo, *hi);
    });
}

void Inventory::raise(Endpoint& e, int kind, std::string evidence, uint64_t wall_ns, const Emit& emit) {
  e.raised |= 1u << kind;
  Finding f;
  f.kind = kind;
  f.service = e.service;
  f.method = e.method;
  f.host = e.host;
  f.path = e.path;
  f.evidence = std::move(evidence);
  f.first_seen = wall_ns;
  f.count = 1;
  std::string key = f.key();
  auto [it, fresh] = findings_.try_emplace(key, std::move(f));
  e.finding_refs[kind] = &it->second;
  it->second.dirty = true;
  dirty_findings_.insert(key);
  if (!fresh) {
    ++it->second.count;
    return;
  }
  ++new_findings_;
  if (!emit) return;
  const FindingInfo& info = finding_info(kind);
  Event ev;
  ev.time_ns = wall_ns;
  ev.node = o_.node;
  FindingEvent fe;
  fe.id = std::string(info.id);
  fe.severity = std::string(info.severity);
  fe.title = std::string(info.title);
  fe.owasp = std::string(info.owasp);
  fe.service = e.service;
  fe.endpoint = EndpointRef{e.method, e.host, e.path, e.protocol};
  fe.evidence = it->second.evidence;
  ev.body = std::move(fe);
  emit(std::move(ev));
}

void Inventory::promote(Endpoint& e, const Emit& emit) {
  e.active = true;
  e.candidates.clear();
  e.candidates.shrink_to_fit();
  ++active_;
  mark_dirty(e);
  if (emit) {
    Event ev;
    ev.time_ns = e.first_seen;
    ev.node = o_.node;
    ev.body = ApiDiscoveredEvent{e.service, e.role, {e.method, e.host, e.path, e.protocol}, e.first_seen};
    emit(std::move(ev));
  }
  // What the held-back calls showed, judged now.
  CallInput in;
  in.wall_ns = e.last_seen;
  in.status = 200;
  uint16_t auth = e.auth;
  std::string evidence = credentials_evidence(e.plaintext_auth, e.key_name, e.cookie_name);
  in.tls = evidence.empty();
  uint16_t resp = no_auth(e.auth) ? e.resp_sensitive : 0;
  check_findings(e, in, auth, resp, evidence, !e.url_secrets.empty(), emit);
}

void Inventory::tick(uint64_t, const Emit& emit) {
  for (auto& [k, e] : map_) {
    if (e->active || e->candidates.empty()) continue;
    bool real = std::any_of(e->candidates.begin(), e->candidates.end(), [&](auto& c) { return !scanner(c); });
    if (real) promote(*e, emit);
    else e->candidates.clear();
  }
  if (map_.size() > o_.max_endpoints) evict();
}

void Inventory::evict() {
  // Batches of 1%: pending endpoints first, then the stalest.
  size_t target = o_.max_endpoints - std::max<size_t>(1, o_.max_endpoints / 100);
  if (map_.size() <= target) return;
  std::vector<std::pair<std::pair<bool, uint64_t>, const std::string*>> order;
  order.reserve(map_.size());
  for (const auto& [k, e] : map_) order.push_back({{e->active, e->last_seen}, &k});
  size_t n = map_.size() - target;
  std::nth_element(order.begin(), order.begin() + static_cast<long>(n), order.end());
  std::vector<std::string> victims;
  for (size_t i = 0; i < n; ++i) victims.push_back(*order[i].second);
  for (const auto& k : victims) {
    auto it = map_.find(k);
    Endpoint* e = it->second.get();
    std::string scope = e->service + kSep + e->role + kSep + e->host;
    auto scope_it = by_scope_.find(scope);
    if (scope_it != by_scope_.end()) {
      auto& v = scope_it->second;
      v.erase(std::remove(v.begin(), v.end(), e), v.end());
      if (v.empty()) by_scope_.erase(scope_it);  // a scope without endpoints keeps no key (F12)
    }
    if (e->active) {
      --active_;
      ++evicted_;
      removed_.push_back(k);
    }
    dirty_.erase(k);
    map_.erase(it);
  }
}

nlohmann::json Inventory::to_json(std::string_view service) const {
  nlohmann::json eps = nlohmann::json::array();
  std::vector<const Endpoint*> sorted;
  for (const auto& [k, e] : map_)
    if (e->active && (service.empty() || e->service == service)) sorted.push_back(e.get());
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) {
    return std::tie(a->service, a->role, a->host, a->path, a->method) <
           std::tie(b->service, b->role, b->host, b->path, b->method);
  });
  for (const Endpoint* e : sorted) eps.push_back(e->to_json());
  nlohmann::json fs = nlohmann::json::array();
  std::vector<const Finding*> fsorted;
  for (const auto& [k, f] : findings_)
    if (service.empty() || f.service == service) fsorted.push_back(&f);
  std::sort(fsorted.begin(), fsorted.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
  for (const Finding* f : fsorted) fs.push_back(f->to_json());
  nlohmann::json ss = nlohmann::json::array();
  std::set<std::string> names;
  for (const auto& [name, s] : services_) names.insert(name);
  for (const Endpoint* e : sorted) names.insert(e->service);
  for (const auto& name : names) {
    if (!service.empty() && name != service) continue;
    auto it = services_.find(name);
    ss.push_back(it == services_.end() ? ServiceStats{}.to_json(name) : it->second.to_json(name));
  }
  return {{"vigil_inventory", kInventoryFormat},
          {"nodes", nlohmann::json::array({o_.node})},
          {"services", ss},
          {"endpoints", eps},
          {"findings", fs},
          {"stats", {{"endpoints", active_}, {"pending", map_.size() - active_}, {"evicted", evicted_},
                     {"calls", calls_}}}};
}

void Inventory::restore(const std::vector<Endpoint>& endpoints, const std::vector<Finding>& findings,
                        const std::unordered_map<std::string, ServiceStats>& services,
                        const std::vector<std::string>& collapsed) {
  for (const auto& c : collapsed) templater_.restore_collapsed(c);
  for (const auto& in : endpoints) {
    auto e = std::make_unique<Endpoint>(in);
    e->active = true;
    e->sensitive_counts.resize(kSensitiveClassCount, 0);
    e->schema_tries = o_.schema_samples;
    std::string scope = e->service + kSep + e->role + kSep + e->host;
    if (e->protocol != "grpc") templater_.restore(scope, e->path);
    std::string key = e->key();
    auto it = map_.find(key);
    if (it != map_.end()) {
      it->second->merge(*e);
      continue;
    }
    by_scope_[scope].push_back(e.get());
    map_.emplace(std::move(key), std::move(e));
    ++active_;
  }
  for (const auto& f : findings) findings_.emplace(f.key(), f);
  for (const auto& [k, s] : services) services_[k] = s;
}

Inventory::Changes Inventory::take_changes() {
  Changes c;
  for (const auto& k : dirty_)
    if (auto it = map_.find(k); it != map_.end()) {
      it->second->dirty = false;
      if (it->second->active) c.endpoints.push_back(it->second.get());
    }
  for (const auto& k : dirty_findings_)
    if (auto it = findings_.find(k); it != findings_.end()) {
      it->second.dirty = false;
      c.findings.push_back(&it->second);
    }
  for (const auto& [name, s] : services_) c.services.emplace_back(name, &s);
  c.removed = std::move(removed_);
  if (collapsed_dirty_) c.collapsed = templater_.collapsed_nodes();
  collapsed_dirty_ = false;
  removed_.clear();
  dirty_.clear();
  dirty_findings_.clear();
  return c;
}

void Inventory::requeue(const Changes& c) {
  for (const Endpoint* e : c.endpoints) {
    const_cast<Endpoint*>(e)->dirty = true;
    dirty_.insert(e->key());
  }
  for (const Finding* f : c.findings) {
    const_cast<Finding*>(f)->dirty = true;
    dirty_findings_.insert(f->key());
  }
  removed_.insert(removed_.end(), c.removed.begin(), c.removed.end());
  if (!c.collapsed.empty()) collapsed_dirty_ = true;
}

size_t Inventory::memory_bytes() const {
  size_t n = sizeof(*this) + templater_.node_count() * 160;
  for (const auto& [k, e] : map_) n += k.capacity() + 64 + e->memory_bytes();
  for (const auto& [k, f] : findings_) n += k.capacity() * 2 + f.evidence.capacity() + sizeof(f) + 64;
  n += clients_.size() * 96 + service_cache_.size() * 128;
  return n;
}

Result<std::vector<Endpoint>> endpoints_of(const nlohmann::json& doc) {
  if (!doc.is_object() || !doc.contains("endpoints") || !doc["endpoints"].is_array())
    return Error{"not a vigil inventory (no \"endpoints\" array)"};
  std::vector<Endpoint> out;
  size_t i = 0;
  for (const auto& j : doc["endpoints"]) {
    auto e = Endpoint::from_json(j);
    if (!e) return Error{fmt::format("endpoint #{} is malformed", i)};
    out.push_back(std::move(*e));
    ++i;
  }
  return out;
}

Result<nlohmann::json> merge_inventories(const std::vector<nlohmann::json>& docs) {
  std::map<std::string, Endpoint> eps;
  std::map<std::string, Finding> fs;
  std::map<std::string, ServiceStats> ss;
  std::set<std::string> nodes;
  for (size_t d = 0; d < docs.size(); ++d) {
    const auto& doc = docs[d];
    if (!doc.is_object() || doc.value("vigil_inventory", 0) != kInventoryFormat)
      return Error{fmt::format("document {} is not a vigil inventory (format {})", d + 1, kInventoryFormat)};
    auto list = endpoints_of(doc);
    if (!list) return Error{fmt::format("document {}: {}", d + 1, list.error().message)};
    for (auto& e : *list) {
      std::string k = e.key();
      auto it = eps.find(k);
      if (it == eps.end()) eps.emplace(k, std::move(e));
      else it->second.merge(e);
    }
    for (const auto& fj : doc.value("findings", nlohmann::json::array())) {
      auto f = Finding::from_json(fj);
      if (!f) continue;
      auto [it, fresh] = fs.try_emplace(f->key(), *f);
      if (!fresh) {
        it->second.count += f->count;
        it->second.first_seen = std::min(it->second.first_seen, f->first_seen);
      }
    }
    for (const auto& sj : doc.value("services", nlohmann::json::array())) {
      auto& s = ss[sj.value("name", "")];
      if (s.exe.empty()) s.exe = sj.value("exe", "");
      s.unmatched_404 += sj.value("unmatched_404", uint64_t{0});
    }
    for (const auto& n : doc.value("nodes", nlohmann::json::array()))
      if (n.is_string()) nodes.insert(n.get<std::string>());
  }
  nlohmann::json out = {{"vigil_inventory", kInventoryFormat}, {"nodes", nodes}};
  nlohmann::json e = nlohmann::json::array(), f = nlohmann::json::array(), s = nlohmann::json::array();
  for (const auto& [k, ep] : eps) e.push_back(ep.to_json());
  for (const auto& [k, fi] : fs) f.push_back(fi.to_json());
  for (const auto& [k, st] : ss) s.push_back(st.to_json(k));
  out["services"] = s;
  out["endpoints"] = e;
  out["findings"] = f;
  return out;
}

}  // namespace vigil::apimap
