#include "agent/sinks/stream.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/file.h"

namespace vigil::sinks {
namespace {

bool is_ip_literal(const std::string& host) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return false;
  freeaddrinfo(res);
  return true;
}

}  // namespace

bool wait_fd(int fd, short events, uint64_t timeout_ns) {
  pollfd p{fd, events, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, static_cast<int>(timeout_ns / 1'000'000));
  } while (rc < 0 && errno == EINTR);
  return rc > 0 && !(p.revents & POLLNVAL) && (p.revents & (events | POLLERR | POLLHUP));
}

std::string tls_error_text() {
  uint32_t e = ERR_get_error();
  if (!e) return "";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsOptions& o) {
  std::shared_ptr<TlsContext> t(new TlsContext);
  t->ctx_ = SSL_CTX_new(TLS_method());
  if (!t->ctx_) return Error{"TLS: cannot create a context: " + tls_error_text()};
  SSL_CTX_set_min_proto_version(t->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(t->ctx_, SSL_VERIFY_PEER, nullptr);
  // Files are checked here, so a wrong path fails the sink's open, not every delivery.
  if (!o.ca_file.empty()) {
    if (auto f = read_file(o.ca_file); !f) return Error{fmt::format("TLS CA file: {}", f.error().message)};
    if (SSL_CTX_load_verify_locations(t->ctx_, o.ca_file.c_str(), nullptr) != 1)
      return Error{fmt::format("TLS CA file {} holds no PEM certificate: {}", o.ca_file, tls_error_text())};
  } else if (SSL_CTX_load_verify_locations(t->ctx_, nullptr, "/etc/ssl/certs") != 1) {
    return Error{"TLS: cannot use the system's CA directory /etc/ssl/certs: " + tls_error_text()};
  }
  if (o.cert_file.empty() != o.key_file.empty())
    return Error{"TLS: a client certificate needs both client_cert and client_key"};
  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(t->ctx_, o.cert_file.c_str()) != 1)
      return Error{fmt::format("TLS client certificate {}: {}", o.cert_file, tls_error_text())};
    if (SSL_CTX_use_PrivateKey_file(t->ctx_, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return Error{fmt::format("TLS client key {}: {}", o.key_file, tls_error_text())};
    if (SSL_CTX_check_private_key(t->ctx_) != 1)
      return Error{fmt::format("TLS client key {} does not match the certificate {}", o.key_file, o.cert_file)};
  }
  return t;
}

TlsContext::~TlsContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

Result<std::unique_ptr<Stream>> Stream::connect(const std::string& host, const std::string& port,
                                                const std::shared_ptr<TlsContext>& tls,
                                                const std::string& server_name, uint64_t timeout_ns) {
  std::unique_ptr<Stream> s(new Stream);
  s->timeout_ns_ = timeout_ns;
  s->peer_ = host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : host + ":" + port;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return Error{fmt::format("resolve {}: {}", host, gai_strerror(rc))};
  Error last{"no address for " + host};
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
      last = os_error("socket");
      continue;
    }
    int rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      int err = ETIMEDOUT;
      socklen_t len = sizeof err;
      if (wait_fd(fd.get(), POLLOUT, timeout_ns)) getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err ? -1 : 0;
      errno = err;
    }
    if (rc != 0) {
      last = os_error("connect to " + s->peer_);
      continue;
    }
    s->fd_ = std::move(fd);
    break;
  }
  freeaddrinfo(res);
  if (!s->fd_) return last;
  if (!tls) return s;

  s->tls_ = tls;
  s->ssl_ = SSL_new(tls->get());
  if (!s->ssl_) return Error{"TLS: " + tls_error_text()};
  SSL_set_fd(s->ssl_, s->fd_.get());
  const std::string& name = server_name.empty() ? host : server_name;
  if (is_ip_literal(name)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl_), name.c_str());
  } else {
    SSL_set_tlsext_host_name(s->ssl_, name.c_str());
    SSL_set1_host(s->ssl_, name.c_str());
  }
  for (;;) {
    int rc = SSL_connect(s->ssl_);
    if (rc == 1) break;
    int err = SSL_get_error(s->ssl_, rc);
    short ev = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (ev && wait_fd(s->fd_.get(), ev, timeout_ns)) continue;
    if (ev) return Error{fmt::format("TLS handshake with {}: timed out", s->peer_)};
    long v = SSL_get_verify_result(s->ssl_);
    if (v != X509_V_OK)
      return Error{fmt::format("TLS handshake with {}: certificate not trusted: {}", s->peer_,
                               X509_verify_cert_error_string(v))};
    std::string why = tls_error_text();
    return Error{fmt::format("TLS handshake with {}: {}", s->peer_, why.empty() ? "connection closed" : why)};
  }
  return s;
}

Stream::~Stream() {
  if (ssl_) {
    SSL_shutdown(ssl_);  // one close_notify, no wait for the peer's
    SSL_free(ssl_);
  }
}

Status Stream::write_all(std::string_view data, size_t* written) {
  size_t off = 0;
  struct Report {
    size_t* to;
    const size_t& off;
    ~Report() {
      if (to) *to = off;
    }
  } report{written, off};
  while (off < data.size()) {
    if (ssl_) {
      int n = SSL_write(ssl_, data.data() + off, static_cast<int>(std::min<size_t>(data.size() - off, 1 << 30)));
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      int err = SSL_get_error(ssl_, n);
      short ev = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
      if (ev && wait_fd(fd_.get(), ev, timeout_ns_)) continue;
      if (ev) return Error{fmt::format("send to {}: timed out", peer_)};
      std::string why = tls_error_text();
      return Error{fmt::format("send to {}: {}", peer_, why.empty() ? "TLS connection closed" : why)};
    }
    ssize_t n = ::send(fd_.get(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (wait_fd(fd_.get(), POLLOUT, timeout_ns_)) continue;
      errno = ETIMEDOUT;
    }
    return os_error("send to " + peer_);
  }
  return {};
}

Result<size_t> Stream::read_some(char* buf, size_t cap) {
  for (;;) {
    if (ssl_) {
      int n = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(cap, 1 << 30)));
      if (n > 0) return static_cast<size_t>(n);
      int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
      short ev = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
      if (ev && wait_fd(fd_.get(), ev, timeout_ns_)) continue;
      if (ev) return Error{fmt::format("read from {}: timed out", peer_), ETIMEDOUT};
      if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return size_t{0};  // closed without close_notify
      std::string why = tls_error_text();
      return Error{fmt::format("read from {}: {}", peer_, why.empty() ? "TLS error" : why)};
    }
    ssize_t n = ::recv(fd_.get(), buf, cap, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (wait_fd(fd_.get(), POLLIN, timeout_ns_)) continue;
      return Error{fmt::format("read from {}: timed out", peer_), ETIMEDOUT};
    }
    return os_error("read from " + peer_);
  }
}

bool Stream::stale() const {
  pollfd p{fd_.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;  // readable while idle: closed (or a stray byte); either way, reconnect
}

}  // namespace vigil::sinks
