#include "agent/metrics/server.h"

#include <time.h>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/file.h"

namespace vigil::metrics {
namespace {

constexpr size_t kMaxRequest = 8192;
constexpr uint64_t kClientTimeoutNs = 5'000'000'000;
constexpr size_t kMaxClients = 32;

std::string response(int status, std::string_view reason, std::string_view type, std::string_view body,
                     bool head) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                status, reason, type, body.size());
  if (!head) out += body;
  return out;
}

}  // namespace

Result<std::unique_ptr<Server>> Server::listen(const std::string& listen, Handlers h) {
  std::string_view a = listen;
  size_t colon = a.rfind(':');
  if (colon == std::string_view::npos)
    return Error{fmt::format("metrics.listen '{}' must be host:port (e.g. 127.0.0.1:9464)", listen)};
  std::string host(a.substr(0, colon)), port(a.substr(colon + 1));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return Error{fmt::format("metrics.listen '{}': {}", listen, gai_strerror(rc))};
  Fd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int one = 1;
  if (fd) setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  bool ok = fd && ::bind(fd.get(), res->ai_addr, res->ai_addrlen) == 0 && ::listen(fd.get(), 16) == 0;
  freeaddrinfo(res);
  if (!ok) return os_error(fmt::format("metrics: listen on {}", listen));
  std::unique_ptr<Server> s(new Server(std::move(fd), std::move(h)));
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(s->fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  s->port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return s;
}

void Server::fill_pollfds(std::vector<pollfd>& fds) const {
  fds.push_back({fd_.get(), POLLIN, 0});
  for (const auto& c : clients_)
    fds.push_back({c->fd.get(), static_cast<short>(c->out.empty() ? POLLIN : POLLOUT), 0});
}

void Server::service(const pollfd* fds, size_t count, uint64_t now_ns) {
  for (size_t i = 1; i < count && i - 1 < clients_.size(); ++i) {
    Client& c = *clients_[i - 1];
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) on_readable(c);
    if (!c.out.empty()) {
      int err = 0;
      size_t n = write_some(c.fd.get(), c.out, err);
      c.out.erase(0, n);
      if (err && err != EAGAIN) c.fd.reset();
    }
    if (c.answered && c.out.empty()) c.fd.reset();
    if (now_ns - c.since_ns > kClientTimeoutNs) c.fd.reset();
  }
  clients_.erase(std::remove_if(clients_.begin(), clients_.end(), [](const auto& c) { return !c->fd; }),
                 clients_.end());
  if (count && (fds[0].revents & POLLIN)) {
    for (;;) {
      int cfd = ::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) break;
      if (clients_.size() >= kMaxClients) {  // a scraper per second is the use; more is refused
        ::close(cfd);
        continue;
      }
      auto c = std::make_unique<Client>();
      c->fd.reset(cfd);
      c->since_ns = now_ns;
      clients_.push_back(std::move(c));
    }
  }
}

void Server::on_readable(Client& c) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      if (c.in.size() > kMaxRequest) {
        c.out = response(431, "Request Header Fields Too Large", "text/plain", "request too large\n", false);
        c.answered = true;
        return;
      }
      continue;
    }
    if (n == 0 && c.in.find("\r\n\r\n") == std::string::npos) {
      c.fd.reset();  // closed before a whole request
      return;
    }
    break;
  }
  if (!c.answered && c.in.find("\r\n\r\n") != std::string::npos) answer(c);
}

void Server::answer(Client& c) {
  c.answered = true;
  ++requests_;
  std::string_view line = std::string_view(c.in).substr(0, c.in.find("\r\n"));
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 <= sp1 || !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
    c.out = response(400, "Bad Request", "text/plain", "not an HTTP/1.x request\n", false);
    return;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  bool head = method == "HEAD";
  if (method != "GET" && !head) {
    c.out = response(405, "Method Not Allowed", "text/plain", "GET only\n", false);
    return;
  }
  if (target == "/metrics") {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
    if (metrics_at_ns_ == 0 || now - metrics_at_ns_ >= 1'000'000'000ull) {
      metrics_ = h_.metrics();
      metrics_at_ns_ = now;
    }
    c.out = response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", metrics_, head);
  } else if (target == "/healthz") {
    c.out = response(200, "OK", "text/plain", "ok\n", head);
  } else if (target == "/readyz") {
    std::string why = h_.not_ready_reason();
    c.out = why.empty() ? response(200, "OK", "text/plain", "ready\n", head)
                        : response(503, "Service Unavailable", "text/plain", why + "\n", head);
  } else {
    c.out = response(404, "Not Found", "text/plain", "try /metrics, /healthz or /readyz\n", head);
  }
}

}  // namespace vigil::metrics
