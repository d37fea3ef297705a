// The syslog sink: RFC 5424 messages over UDP (RFC 5426), TCP with
// octet-counting framing (RFC 6587), TLS (RFC 5425, the same framing) or a
// unix datagram socket (/dev/log).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/sinks/stream.h"
#include "agent/sinks/worker.h"
#include "base/fd.h"

namespace vigil::sinks {

struct SyslogOptions {
  std::string address;          // udp://host:port | tcp://host:port | tls://host:port | unix:///dev/log
  std::string facility = "daemon";
  std::string app_name = "vigil";
  std::string format;           // rfc5424 | rfc3164; empty: rfc3164 on unix://, else rfc5424
  std::string hostname;         // the node name
  uint64_t io_timeout_ns = 5'000'000'000;
  TlsOptions tls;  // tls:// (RFC 5425): CA, client certificate, server name
};

// "daemon" -> 3, ... (RFC 5424 6.2.1); -1 when unknown.
int syslog_facility(std::string_view name);

// One RFC 5424 message: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [vigil@32473 kind= severity= seq=] JSON
std::string format_rfc5424(const Record& r, int facility, std::string_view host, std::string_view app, int pid);

// What syslog(3) writes to /dev/log, and what rsyslog's and journald's local socket
// parse by default: <PRI>Mmm dd HH:MM:SS [HOST ]APP[PID]: JSON (RFC 3164; local time;
// HOST only when `host` is not empty, i.e. over the network).
std::string format_rfc3164(const Record& r, int facility, std::string_view host, std::string_view app, int pid);

class SyslogOutput final : public Output {
 public:
  // Checks the address; the connection is made (and remade) when delivering.
  static Result<std::unique_ptr<SyslogOutput>> create(SyslogOptions o);
  std::string describe() const override { return "syslog " + o_.address; }
  Delivery deliver(std::span<const Record> batch) override;

 private:
  enum class Transport { kUdp, kTcp, kTls, kUnix };
  explicit SyslogOutput(SyslogOptions o) : o_(std::move(o)) {}
  Status connect();
  std::string format(const Record& r) const;

  SyslogOptions o_;
  Transport transport_ = Transport::kUdp;
  bool rfc3164_ = false;
  std::string host_, port_, path_;
  int facility_ = 3, pid_ = 0;
  Fd fd_;                          // udp, unix
  std::unique_ptr<Stream> stream_;  // tcp, tls
  std::shared_ptr<TlsContext> tls_;
  Delivery deliver_stream(std::span<const Record> batch);
  std::string msg_, frame_;
  std::vector<size_t> ends_;  // where each record's frame ends in frame_
};

}  // namespace vigil::sinks
