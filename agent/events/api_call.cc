#include "agent/events/api_call.h"

#include <algorithm>
#include <array>

namespace vigil {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_secret_param(std::string_view name) {
  std::string n = lower(name);
  static constexpr std::array<std::string_view, 10> kContains = {
      "token", "secret", "passw", "pwd", "apikey", "api_key", "auth", "session", "signature", "jwt"};
  static constexpr std::array<std::string_view, 4> kExact = {"key", "sig", "code", "access"};
  for (auto c : kContains)
    if (n.find(c) != std::string::npos) return true;
  return std::find(kExact.begin(), kExact.end(), n) != kExact.end();
}

bool looks_like_jwt(std::string_view v) {
  return v.size() > 20 && v.substr(0, 3) == "eyJ" && std::count(v.begin(), v.end(), '.') == 2;
}

// Repeated fields are joined with ", " (RFC 9110 §5.3) so each name is one JSON key.
Headers redact_headers(const protocols::Headers& in) {
  Headers out;
  out.reserve(in.size());
  for (const auto& [k, v] : in) {
    const std::string& value = is_secret_header(k) ? std::string(kRedacted) : v;
    auto dup = std::find_if(out.begin(), out.end(), [&](const auto& h) { return h.first == k; });
    if (dup == out.end()) {
      out.emplace_back(k, value);
    } else if (dup->second != kRedacted) {
      dup->second += ", ";
      dup->second += value;
    }
  }
  return out;
}

}  // namespace

bool is_secret_header(std::string_view n) {
  // By length first: this runs for every header of every call.
  switch (n.size()) {
    case 6: return n == "cookie";
    case 9: return n == "x-api-key";
    case 10: return n == "set-cookie";
    case 12: return n == "x-auth-token";
    case 13: return n == "authorization";
    case 19: return n == "proxy-authorization";
    case 20: return n == "x-amz-security-token";
    default: return false;
  }
}

std::string redact_query(std::string_view query) {
  std::string out;
  out.reserve(query.size());
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(start, end - start);
    size_t eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (!out.empty() || start > 0) out += '&';
    if (eq != std::string_view::npos && (is_secret_param(name) || looks_like_jwt(value))) {
      out.append(name);
      out += '=';
      out.append(kRedacted);
    } else {
      out.append(pair);
    }
    start = end + 1;
  }
  return out;
}

std::string redact_body(std::string_view body, std::string_view content_type) {
  if (lower(content_type).find("application/x-www-form-urlencoded") != std::string::npos)
    return redact_query(body);
  // JSON-ish: for each "key": "value" whose key looks secret, replace the value.
  // A capped body may end mid-string: an unterminated value is redacted whole.
  std::string out;
  out.reserve(body.size());
  size_t i = 0;
  while (i < body.size()) {
    size_t q = body.find('"', i);
    if (q == std::string_view::npos) break;
    size_t end = q + 1;
    while (end < body.size() && body[end] != '"') end += body[end] == '\\' ? 2 : 1;
    if (end >= body.size()) break;
    std::string_view key = body.substr(q + 1, end - q - 1);
    size_t colon = end + 1;
    while (colon < body.size() && (body[colon] == ' ' || body[colon] == '\t')) ++colon;
    size_t vstart = colon + 1;
    while (vstart < body.size() && (body[vstart] == ' ' || body[vstart] == '\t')) ++vstart;
    if (colon < body.size() && body[colon] == ':' && vstart < body.size() && body[vstart] == '"' &&
        is_secret_param(key)) {
      size_t vend = vstart + 1;
      while (vend < body.size() && body[vend] != '"') vend += body[vend] == '\\' ? 2 : 1;
      out.append(body.substr(i, vstart + 1 - i));
      out.append(kRedacted);
      if (vend >= body.size()) return out;  // cut inside the secret
      out += '"';
      i = vend + 1;
      continue;
    }
    out.append(body.substr(i, end + 1 - i));
    i = end + 1;
  }
  out.append(body.substr(std::min(i, body.size())));
  return out;
}

ApiCallEvent make_api_call(const protocols::Exchange& x, const ConnRef& conn,
                           const ApiCallOptions& options) {
  ApiCallEvent a;
  a.conn = conn;
  a.role = conn.role;
  a.protocol = x.request.version_major == 2 ? "http/2" : x.request.version_minor == 0 ? "http/1.0" : "http/1.1";
  a.request.method = x.request.method;
  protocols::Target t = protocols::split_target(x.request.target);
  std::string_view host = x.request.header("host");
  a.request.host = host.empty() ? t.authority : host;  // absolute form (proxies): its authority
  a.request.path = t.path;
  if (t.has_query) a.request.query = redact_query(t.query);
  a.request.headers = redact_headers(x.request.headers);
  a.response.status = x.response.status;
  a.response.interim = x.response.interim;
  a.response.headers = redact_headers(x.response.headers);
  a.endpoint = a.request.path;  // the inventory (agent/apimap) replaces it with the template
  if (x.request.version_major == 2 && x.request.header("content-type").starts_with("application/grpc")) {
    // gRPC: "/package.Service/Method"; the status is the grpc-status trailer.
    a.protocol = "grpc";
    ApiCallEvent::Grpc g;
    std::string_view p = a.request.path;
    if (p.starts_with("/")) p.remove_prefix(1);
    size_t slash = p.find('/');
    g.service = std::string(p.substr(0, slash));
    g.method = slash == std::string_view::npos ? "" : std::string(p.substr(slash + 1));
    std::string_view st = x.response.header("grpc-status");
    g.status = st.empty() ? -1 : std::atoi(std::string(st).c_str());
    a.grpc = std::move(g);
  }
  a.latency_ns = x.response.first_ts > x.request.first_ts ? x.response.first_ts - x.request.first_ts : 0;
  a.req_bytes = x.request.head_bytes + x.request.body_bytes;
  a.resp_bytes = x.response.head_bytes + x.response.body_bytes;
  a.truncated = x.request.truncated || x.response.truncated;
  if (options.bodies) {
    a.request_body = redact_body(x.request.body, x.request.header("content-type"));
    a.response_body = redact_body(x.response.body, x.response.header("content-type"));
  }
  return a;
}

}  // namespace vigil
