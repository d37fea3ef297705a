// A client byte stream for network sinks: TCP with a connect and I/O timeout,
// optionally TLS on BoringSSL (the agent links no OpenSSL) with a CA file,
// server name check and a client certificate (mTLS).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/fd.h"
#include "base/result.h"

struct ssl_ctx_st;
struct ssl_st;

namespace vigil::sinks {

struct TlsOptions {
  bool enabled = false;
  std::string ca_file;      // PEM roots; empty: the system's (/etc/ssl/certs)
  std::string cert_file;    // client certificate chain (PEM), with key_file
  std::string key_file;
  std::string server_name;  // checked against the certificate; empty: the host connected to
};

// A TLS client context, loaded once (files read and checked at sink open).
class TlsContext {
 public:
  static Result<std::shared_ptr<TlsContext>> create(const TlsOptions& o);
  ~TlsContext();
  ssl_ctx_st* get() const { return ctx_; }

 private:
  TlsContext() = default;
  ssl_ctx_st* ctx_ = nullptr;
};

class Stream {
 public:
  // Connects to host:port (each address in turn), then the TLS handshake when `tls`.
  static Result<std::unique_ptr<Stream>> connect(const std::string& host, const std::string& port,
                                                 const std::shared_ptr<TlsContext>& tls,
                                                 const std::string& server_name, uint64_t timeout_ns);
  ~Stream();
  // All of `data`, or an error; `written` (when given) gets how much went out before the error.
  Status write_all(std::string_view data, size_t* written = nullptr);
  // Some bytes (>0), 0 at end of stream, or an error (timeout included).
  Result<size_t> read_some(char* buf, size_t cap);
  // True when the peer closed or sent something unasked (a kept-alive connection gone stale).
  bool stale() const;
  void set_io_timeout(uint64_t ns) { timeout_ns_ = ns; }
  const std::string& peer() const { return peer_; }

 private:
  Stream() = default;
  Fd fd_;
  std::shared_ptr<TlsContext> tls_;
  ssl_st* ssl_ = nullptr;
  std::string peer_;
  uint64_t timeout_ns_ = 0;
};

// Waits until fd is ready for `events` (or failed: the next call says how); false on timeout.
bool wait_fd(int fd, short events, uint64_t timeout_ns);

// The first error BoringSSL queued, as text ("" when none).
std::string tls_error_text();

}  // namespace vigil::sinks
