#include "agent/sinks/http_client.h"

#include <http_parser.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>

#include "agent/events/secrets.h"
#include "agent/vigild/version.h"

namespace vigil::sinks {
namespace {

constexpr size_t kMaxBody = 64 << 10;
constexpr size_t kMaxHead = 64 << 10;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  return true;
}

struct ParseState {
  HttpResponse r;
  std::string field, value;
  bool in_value = false, complete = false;
  size_t head_bytes = 0;
  std::string retry_after;
  const HttpClient::BodyFn* on_body = nullptr;  // set: the body streams there

  void header_done() {
    if (iequals(field, "content-type")) r.content_type = value;
    if (iequals(field, "retry-after")) retry_after = value;
    field.clear();
    value.clear();
    in_value = false;
  }
};

http_parser_settings parser_settings() {
  http_parser_settings s{};
  s.on_header_field = [](http_parser* p, const char* at, size_t n) {
    auto* st = static_cast<ParseState*>(p->data);
    if (st->in_value) st->header_done();
    if ((st->head_bytes += n) > kMaxHead) return 1;
    st->field.append(at, n);
    return 0;
  };
  s.on_header_value = [](http_parser* p, const char* at, size_t n) {
    auto* st = static_cast<ParseState*>(p->data);
    st->in_value = true;
    if ((st->head_bytes += n) > kMaxHead) return 1;
    st->value.append(at, n);
    return 0;
  };
  s.on_headers_complete = [](http_parser* p) {
    auto* st = static_cast<ParseState*>(p->data);
    if (st->in_value) st->header_done();
    st->r.status = p->status_code;
    return 0;
  };
  s.on_body = [](http_parser* p, const char* at, size_t n) {
    auto* st = static_cast<ParseState*>(p->data);
    if (st->on_body) return (*st->on_body)(st->r.status, std::string_view(at, n)) ? 0 : 1;
    size_t room = kMaxBody - std::min(kMaxBody, st->r.body.size());
    st->r.body.append(at, std::min(room, n));
    return 0;
  };
  s.on_message_complete = [](http_parser* p) {
    static_cast<ParseState*>(p->data)->complete = true;
    http_parser_pause(p, 1);  // one response per request: stop at its end
    return 0;
  };
  return s;
}

}  // namespace

Result<Url> Url::parse(std::string_view text) {
  Url u;
  std::string_view rest;
  if (text.starts_with("https://")) {
    u.tls = true;
    rest = text.substr(8);
  } else if (text.starts_with("http://")) {
    rest = text.substr(7);
  } else {
    return Error{fmt::format("URL '{}' must start with http:// or https://", text)};
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  u.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos)
    return Error{fmt::format("URL '{}': credentials in the URL are not supported (use headers)", text)};
  std::string_view host = authority, port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error{fmt::format("URL '{}': unclosed '[' in the host", text)};
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Error{fmt::format("URL '{}': junk after the host", text)};
      port = authority.substr(close + 2);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return Error{fmt::format("URL '{}' has no host", text)};
  unsigned p = 0;
  if (!port.empty()) {
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535)
      return Error{fmt::format("URL '{}': port '{}' is not 1..65535", text, port)};
  }
  u.host = std::string(host);
  u.authority = std::string(authority);
  u.port = port.empty() ? (u.tls ? "443" : "80") : std::string(port);
  // Shown in logs, status and errors: without the query, and without path
  // segments shaped like tokens (webhook URLs often carry one: F20).
  std::string_view path = u.path;
  size_t q = path.find('?');
  u.text = fmt::format("{}://{}{}{}", u.tls ? "https" : "http", u.authority, secrets::redact_path(path.substr(0, q)),
                       q == std::string_view::npos ? "" : "?[redacted]");
  return u;
}

int64_t parse_retry_after(std::string_view v, int64_t now_s) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return -1;
  int64_t secs = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
  // At most an hour: a receiver (or whoever sits between) must not mute the sink
  // for good (F20).
  if (ec == std::errc() && ptr == v.data() + v.size()) return secs < 0 ? -1 : std::min(secs, kMaxRetryAfterS);
  struct tm tm{};
  std::string s(v);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end) return -1;
  int64_t at = timegm(&tm);
  return at > now_s ? std::min(at - now_s, kMaxRetryAfterS) : 0;
}

Result<HttpResponse> HttpClient::post(std::string_view content_type, std::string_view content_encoding,
                                      std::string_view body) {
  head_ = request_head("POST", o_.url.path);
  head_ += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n", content_type, body.size());
  if (!content_encoding.empty()) head_ += fmt::format("Content-Encoding: {}\r\n", content_encoding);
  head_ += "\r\n";
  // A kept-alive connection the receiver closed meanwhile fails before any answer:
  // that one attempt is repeated on a new connection.
  bool reused = conn_ && !conn_->stale();
  if (!reused) conn_.reset();
  bool sent_nothing = false;
  auto r = exchange(head_, body, sent_nothing);
  if (!r && reused && sent_nothing) {
    conn_.reset();
    r = exchange(head_, body, sent_nothing);
  }
  if (!r) conn_.reset();
  return r;
}

std::string HttpClient::request_head(std::string_view method, std::string_view target) const {
  std::string head = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vigil/{}\r\n", method, target,
                                 o_.url.authority, VIGIL_VERSION);
  for (const auto& [k, v] : o_.headers) head += fmt::format("{}: {}\r\n", k, v);
  return head;
}

Result<HttpResponse> HttpClient::get(std::string_view target, const BodyFn& on_body,
                                     const std::function<bool()>& keep_waiting) {
  std::string head = request_head("GET", target) + "\r\n";
  conn_.reset();
  bool sent_nothing = false;
  auto r = exchange(head, {}, sent_nothing, &on_body, &keep_waiting);
  conn_.reset();
  return r;
}

Result<HttpResponse> HttpClient::exchange(const std::string& head, std::string_view body, bool& sent_nothing,
                                          const BodyFn* on_body, const std::function<bool()>* keep_waiting) {
  sent_nothing = true;
  if (!conn_) {
    auto c = Stream::connect(o_.url.host, o_.url.port, o_.url.tls ? o_.tls : nullptr, o_.server_name, o_.timeout_ns);
    if (!c) return c.error();
    conn_ = std::move(*c);
    if (keep_waiting && o_.read_poll_ns) conn_->set_io_timeout(o_.read_poll_ns);
  }
  if (auto st = conn_->write_all(head); !st) return st.error();
  if (auto st = conn_->write_all(body); !st) return st.error();
  static const http_parser_settings kSettings = parser_settings();
  http_parser p;
  http_parser_init(&p, HTTP_RESPONSE);
  ParseState st;
  st.on_body = on_body;
  p.data = &st;
  char buf[16384];
  bool got_bytes = false;
  while (!st.complete) {
    auto n = conn_->read_some(buf, sizeof buf);
    if (!n && n.error().code == ETIMEDOUT && keep_waiting && (*keep_waiting)()) continue;
    if (!n) return n.error();
    if (*n == 0) {
      http_parser_execute(&p, &kSettings, nullptr, 0);  // EOF ends a close-delimited body
      if (st.complete) break;
      sent_nothing = !got_bytes;
      return Error{fmt::format("{}: the connection closed before a whole response", conn_->peer())};
    }
    got_bytes = true;
    size_t used = http_parser_execute(&p, &kSettings, buf, *n);
    if (st.complete) break;
    if (HTTP_PARSER_ERRNO(&p) == HPE_CB_body && on_body) return std::move(st.r);  // the reader stopped
    if (used != *n || HTTP_PARSER_ERRNO(&p) != HPE_OK)
      return Error{fmt::format("{}: malformed HTTP response ({})", conn_->peer(),
                               http_errno_description(HTTP_PARSER_ERRNO(&p)))};
  }
  bool keep = http_should_keep_alive(&p);
  if (!keep) conn_.reset();
  st.r.retry_after_s = parse_retry_after(st.retry_after, static_cast<int64_t>(time(nullptr)));
  return std::move(st.r);
}

}  // namespace vigil::sinks
