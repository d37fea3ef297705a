// A small HTTP/1.1 client for the webhook and OTLP sinks: POST over a kept-alive
// connection (plain or TLS, agent/sinks/stream.h), responses parsed by
// http_parser. Not cpp-httplib or libcurl: Debian builds both against OpenSSL,
// and the agent links BoringSSL only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/sinks/stream.h"
#include "base/result.h"

namespace vigil::sinks {

struct Url {
  bool tls = false;
  std::string host, port, path;  // path with its query; "/" when none
  std::string authority;         // host[:port] as written (the Host header)
  std::string text;              // for messages: no query, token-shaped path segments hidden
  static Result<Url> parse(std::string_view text);
};

struct HttpResponse {
  int status = 0;
  std::string body;         // the first 64 KiB
  std::string content_type;
  int64_t retry_after_s = -1;  // Retry-After in seconds (a date is converted), -1: none
};

struct HttpClientOptions {
  Url url;
  std::shared_ptr<TlsContext> tls;  // set for https
  std::string server_name;          // certificate name to check; empty: the URL's host
  uint64_t timeout_ns = 10'000'000'000;
  uint64_t read_poll_ns = 0;  // get(): keep_waiting is asked this often while nothing comes (0: timeout_ns)
  std::vector<std::pair<std::string, std::string>> headers;  // added to every request
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions o) : o_(std::move(o)) {}
  // POSTs `body` to the URL's path; a transport error or an unparsable response is an Error.
  Result<HttpResponse> post(std::string_view content_type, std::string_view content_encoding, std::string_view body);
  // GETs `target` (a path with its query) on a new connection; the body goes to
  // `on_body` as it arrives (a watch stream: the response never ends by itself), which
  // returns false to stop reading. While no byte comes for `timeout_ns`, `keep_waiting`
  // says whether to wait on. The status and headers come back; the body stays empty.
  using BodyFn = std::function<bool(int status, std::string_view chunk)>;
  Result<HttpResponse> get(std::string_view target, const BodyFn& on_body, const std::function<bool()>& keep_waiting);
  const Url& url() const { return o_.url; }
  void close() { conn_.reset(); }

 private:
  // The request line, Host, User-Agent and the configured headers (no blank line yet).
  std::string request_head(std::string_view method, std::string_view target) const;
  Result<HttpResponse> exchange(const std::string& head, std::string_view body, bool& sent_nothing,
                                const BodyFn* on_body = nullptr, const std::function<bool()>* keep_waiting = nullptr);

  HttpClientOptions o_;
  std::unique_ptr<Stream> conn_;
  std::string head_;
};

// Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3) -> seconds from `now_s`; -1 when neither.
int64_t parse_retry_after(std::string_view v, int64_t now_s);
inline constexpr int64_t kMaxRetryAfterS = 3600;  // a longer wait asked for is an hour

}  // namespace vigil::sinks
