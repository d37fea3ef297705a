#include "agent/events/api_call.h"

#include <algorithm>
#include <array>
#include <utility>

namespace vigil {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool secret_field(std::string_view name, std::string_view value) {
  return secrets::is_secret_header(name) || secrets::looks_like_jwt(value);
}

// Repeated fields are joined with ", " (RFC 9110 §5.3) so each name is one JSON key.
Headers redact_headers(const protocols::Headers& in) {
  Headers out;
  out.reserve(in.size(), in.bytes());
  for (const auto& [k, v] : in) {
    std::string_view value = secret_field(k, v) ? kRedacted : v;
    size_t dup = out.find(k);
    if (dup == out.size()) {
      out.emplace_back(k, value);
    } else if (out[dup].second != kRedacted) {
      out.append_value(dup, ", ");
      out.append_value(dup, value);
    }
  }
  return out;
}

// Most heads have nothing to redact or join: their fields move as they are.
Headers redact_headers(protocols::Headers&& in) {
  for (size_t i = 0; i < in.size(); ++i) {
    auto [k, v] = in[i];
    if (secret_field(k, v) || in.find(k) != i) return redact_headers(std::as_const(in));
  }
  return std::move(in);
}

}  // namespace

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
    if (eq != std::string_view::npos && (secrets::is_secret_param(name) || secrets::looks_like_jwt(value))) {
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

namespace {

// The end of the JSON value starting at `at` (a string, an object or array with
// what nests in it, or a scalar), or npos when the body ends first.
size_t json_value_end(std::string_view b, size_t at) {
  if (b[at] == '"') {
    size_t i = at + 1;
    while (i < b.size() && b[i] != '"') i += b[i] == '\\' ? 2 : 1;
    return i < b.size() ? i + 1 : std::string_view::npos;
  }
  if (b[at] == '{' || b[at] == '[') {
    int depth = 0;
    for (size_t i = at; i < b.size(); ++i) {
      char c = b[i];
      if (c == '"') {
        i = json_value_end(b, i);
        if (i == std::string_view::npos) return i;
        --i;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return std::string_view::npos;
  }
  size_t i = at;
  while (i < b.size() && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' &&
         b[i] != '\r' && b[i] != '\t')
    ++i;
  return i < b.size() ? i : std::string_view::npos;
}

bool json_body(std::string_view lower_type, std::string_view body) {
  if (lower_type.find("json") != std::string_view::npos) return true;
  size_t first = body.find_first_not_of(" \t\r\n");
  return lower_type.empty() && first != std::string_view::npos && (body[first] == '{' || body[first] == '[');
}

}  // namespace

std::string redact_body(std::string_view body, std::string_view content_type) {
  std::string type = lower(content_type);
  if (type.find("application/x-www-form-urlencoded") != std::string::npos) return redact_query(body);
  // XML, multipart, text: a secret could be anywhere (security review F11).
  if (!json_body(type, body)) return body.empty() ? std::string() : std::string(kRedacted);
  // For each "key": value whose key looks secret, the value (of any type) is
  // replaced by the string "[redacted]". A capped body may end inside a value:
  // it is redacted to the end.
  std::string out;
  out.reserve(body.size());
  size_t i = 0;
  while (i < body.size()) {
    size_t q = body.find('"', i);
    if (q == std::string_view::npos) break;
    size_t end = json_value_end(body, q);
    if (end == std::string_view::npos) break;
    std::string_view key = body.substr(q + 1, end - q - 2);
    size_t colon = end;
    while (colon < body.size() && (body[colon] == ' ' || body[colon] == '\t')) ++colon;
    size_t vstart = colon + 1;
    while (vstart < body.size() && (body[vstart] == ' ' || body[vstart] == '\t')) ++vstart;
    if (colon < body.size() && body[colon] == ':' && vstart < body.size() && secrets::is_secret_param(key)) {
      out.append(body.substr(i, vstart - i));
      out += '"';
      out.append(kRedacted);
      out += '"';
      size_t vend = json_value_end(body, vstart);
      if (vend == std::string_view::npos) return out;  // cut inside the secret
      i = vend;
      continue;
    }
    out.append(body.substr(i, end - i));
    i = end;
  }
  out.append(body.substr(std::min(i, body.size())));
  return out;
}

namespace {

void add_bodies(ApiCallEvent& a, const protocols::Exchange& x, const ApiCallOptions& options) {
  if (!options.bodies) return;
  a.request_body = redact_body(x.request.body, x.request.header("content-type"));
  a.response_body = redact_body(x.response.body, x.response.header("content-type"));
}

}  // namespace

void add_api_call_payload(ApiCallEvent& a, const protocols::Exchange& x, const ApiCallOptions& options,
                          CaptureLevel level) {
  if (level == CaptureLevel::kMetadata) return;
  if (level == CaptureLevel::kFull) add_bodies(a, x, options);
  a.request.headers = redact_headers(x.request.headers);
  a.response.headers = redact_headers(x.response.headers);
}

void add_api_call_payload(ApiCallEvent& a, protocols::Exchange&& x, const ApiCallOptions& options,
                          CaptureLevel level) {
  if (level == CaptureLevel::kMetadata) return;
  if (level == CaptureLevel::kFull) add_bodies(a, x, options);  // before the fields move: the content types are read from them
  a.request.headers = redact_headers(std::move(x.request.headers));
  a.response.headers = redact_headers(std::move(x.response.headers));
}

ApiCallEvent make_api_call(const protocols::Exchange& x, const ConnRef& conn, const ApiCallOptions& options,
                           bool with_payload) {
  ApiCallEvent a;
  a.conn = conn;
  a.role = conn.role;
  a.protocol = x.request.version_major == 2 ? "http/2" : x.request.version_minor == 0 ? "http/1.0" : "http/1.1";
  a.request.method = x.request.method;
  protocols::Target t = protocols::split_target(x.request.target);
  std::string_view host = x.request.header("host");
  // Absolute form (proxies): its authority, without "user:pass@".
  a.request.host = secrets::strip_userinfo(host.empty() ? t.authority : host);
  a.request.path = secrets::redact_path(t.path);
  if (t.has_query) a.request.query = redact_query(t.query);
  a.response.status = x.response.status;
  a.response.interim = x.response.interim;
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
  if (with_payload) add_api_call_payload(a, x, options);
  return a;
}

}  // namespace vigil
