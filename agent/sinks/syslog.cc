#include "agent/sinks/syslog.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <cstring>
#include <ctime>

namespace vigil::sinks {
namespace {

// Event severity -> syslog severity: info 6, low 5 (notice), medium 4 (warning),
// high 3 (err), critical 2 (crit).
int syslog_severity(uint8_t s) {
  static constexpr std::array<int, 5> kMap = {6, 5, 4, 3, 2};
  return kMap[std::min<uint8_t>(s, 4)];
}

// RFC 5424 PARAM-VALUE: '"', '\' and ']' escaped.
void sd_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
}

// PRINTUSASCII without spaces, at most `max` characters; "-" when empty.
void header_field(std::string& out, std::string_view v, size_t max) {
  size_t n = 0;
  for (char c : v) {
    if (n == max) break;
    if (c > 32 && c < 127) {
      out += c;
      ++n;
    }
  }
  if (n == 0) out += '-';
}

// A timestamp's text down to the second, formatted once per second per thread and
// format: events come in bursts within the same second.
struct SecondText {
  time_t secs = -1;
  char text[40];
  size_t len = 0;

  template <typename Format>  // Format(const struct tm&, char* out, size_t room) -> length
  std::string_view of(uint64_t time_ns, bool utc, Format&& format) {
    time_t now = static_cast<time_t>(time_ns / 1'000'000'000ull);
    if (now != secs) {
      struct tm tm{};
      if (utc)
        gmtime_r(&now, &tm);
      else
        localtime_r(&now, &tm);
      len = format(tm, text, sizeof text);
      secs = now;
    }
    return {text, len};
  }
};

// "<PRI>", room reserved for the header (`header` bytes) and the event's line.
std::string message_start(const Record& r, int facility, size_t header) {
  std::string out;
  out.reserve(r.line.size() + header);
  out += fmt::format("<{}>", facility * 8 + syslog_severity(r.severity));
  return out;
}

}  // namespace

int syslog_facility(std::string_view name) {
  static constexpr std::array<std::string_view, 24> kNames = {
      "kern",   "user",   "mail",   "daemon", "auth",   "syslog", "lpr",    "news",
      "uucp",   "cron",   "authpriv", "ftp",  "ntp",    "security", "console", "solaris-cron",
      "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"};
  for (size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<int>(i);
  return -1;
}

std::string format_rfc5424(const Record& r, int facility, std::string_view host, std::string_view app, int pid) {
  std::string out = message_start(r, facility, 160);
  out += "1 ";  // VERSION
  // TIMESTAMP: RFC 3339, at most 6 fractional digits (RFC 5424 6.2.3).
  thread_local SecondText ts;
  out += ts.of(r.time_ns, true, [](const struct tm& tm, char* text, size_t room) {
    return strftime(text, room, "%Y-%m-%dT%H:%M:%S", &tm);
  });
  out += fmt::format(".{:06}Z ", (r.time_ns % 1'000'000'000ull) / 1000);
  header_field(out, host, 255);
  out += ' ';
  header_field(out, app, 48);
  out += fmt::format(" {} ", pid);
  header_field(out, event_kind_name(r.kind), 32);
  out += " [vigil@32473 kind=\"";
  sd_value(out, event_kind_name(r.kind));
  out += "\" severity=\"";
  sd_value(out, severity_name(r.severity));
  out += fmt::format("\" seq=\"{}\"] ", r.seq);
  out += r.line;
  return out;
}

std::string format_rfc3164(const Record& r, int facility, std::string_view host, std::string_view app, int pid) {
  std::string out = message_start(r, facility, 64);
  // TIMESTAMP "Mmm dd HH:MM:SS" in local time, as syslog(3) writes it (months in English
  // whatever the locale).
  thread_local SecondText ts;
  out += ts.of(r.time_ns, false, [](const struct tm& tm, char* text, size_t room) {
    static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    return fmt::format_to_n(text, room, "{} {:2} {:02}:{:02}:{:02} ", kMonths[tm.tm_mon % 12], tm.tm_mday,
                            tm.tm_hour, tm.tm_min, tm.tm_sec)
        .size;
  });
  if (!host.empty()) {
    header_field(out, host, 255);
    out += ' ';
  }
  header_field(out, app, 32);  // the TAG
  out += fmt::format("[{}]: ", pid);
  out += r.line;
  return out;
}

Result<std::unique_ptr<SyslogOutput>> SyslogOutput::create(SyslogOptions o) {
  std::unique_ptr<SyslogOutput> s(new SyslogOutput(o));
  s->facility_ = syslog_facility(o.facility);
  if (s->facility_ < 0) return Error{fmt::format("syslog facility '{}' is not one of RFC 5424's (e.g. daemon, local0)", o.facility)};
  s->pid_ = static_cast<int>(getpid());
  std::string_view a = o.address;
  auto host_port = [&](std::string_view rest) -> Status {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == rest.size())
      return Error{fmt::format("syslog address '{}' needs a port (e.g. udp://127.0.0.1:514)", o.address)};
    std::string_view host = rest.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    s->host_ = std::string(host);
    s->port_ = std::string(rest.substr(colon + 1));
    return {};
  };
  if (a.starts_with("udp://")) {
    s->transport_ = Transport::kUdp;
    if (auto st = host_port(a.substr(6)); !st) return st.error();
  } else if (a.starts_with("tcp://")) {
    s->transport_ = Transport::kTcp;
    if (auto st = host_port(a.substr(6)); !st) return st.error();
  } else if (a.starts_with("unix://")) {
    s->transport_ = Transport::kUnix;
    s->path_ = std::string(a.substr(7));
    if (s->path_.empty() || s->path_.size() >= sizeof(sockaddr_un{}.sun_path))
      return Error{fmt::format("syslog address '{}': the socket path is empty or too long", o.address)};
  } else if (a.starts_with("tls://")) {
    s->transport_ = Transport::kTls;
    if (auto st = host_port(a.substr(6)); !st) return st.error();
    auto t = TlsContext::create(o.tls);
    if (!t) return Error{fmt::format("syslog {}: {}", o.address, t.error().message)};
    s->tls_ = std::move(*t);
  } else {
    return Error{fmt::format("syslog address '{}' must start with udp://, tcp://, tls:// or unix://", o.address)};
  }
  if (o.format.empty())
    s->rfc3164_ = s->transport_ == Transport::kUnix;
  else if (o.format == "rfc3164" || o.format == "rfc5424")
    s->rfc3164_ = o.format == "rfc3164";
  else
    return Error{fmt::format("syslog format '{}' is not rfc5424 or rfc3164", o.format)};
  if (s->transport_ != Transport::kTls && (!o.tls.ca_file.empty() || !o.tls.cert_file.empty()))
    return Error{fmt::format("syslog address '{}': ca/client_cert are set but the address is not tls://", o.address)};
  return s;
}

Status SyslogOutput::connect() {
  fd_.reset();
  stream_.reset();
  if (transport_ == Transport::kTcp || transport_ == Transport::kTls) {
    auto st = Stream::connect(host_, port_, tls_, o_.tls.server_name, o_.io_timeout_ns);
    if (!st) return Error{fmt::format("syslog {}: {}", o_.address, st.error().message)};
    stream_ = std::move(*st);
    return {};
  }
  if (transport_ == Transport::kUnix) {
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return os_error("syslog socket");
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path_.c_str(), path_.size());
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      return os_error("connect to syslog socket " + path_);
    fd_ = std::move(fd);
    return {};
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res); rc != 0)
    return Error{fmt::format("resolve syslog host {}: {}", host_, gai_strerror(rc))};
  Status last = Error{"no address"};
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
      last = os_error("syslog socket");
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {  // a datagram socket connects at once
      last = os_error(fmt::format("connect to syslog {}", o_.address));
      continue;
    }
    fd_ = std::move(fd);
    break;
  }
  freeaddrinfo(res);
  return fd_ ? Status{} : last;
}

std::string SyslogOutput::format(const Record& r) const {
  if (!rfc3164_) return format_rfc5424(r, facility_, o_.hostname, o_.app_name, pid_);
  // On the local socket the receiver adds its own host name, as for syslog(3).
  return format_rfc3164(r, facility_, transport_ == Transport::kUnix ? std::string_view() : o_.hostname,
                        o_.app_name, pid_);
}

Delivery SyslogOutput::deliver(std::span<const Record> batch) {
  Delivery d;
  if (!fd_ && !stream_)
    if (auto st = connect(); !st) {
      d.error = st.error().message;
      return d;
    }
  if (stream_) return deliver_stream(batch);
  for (const auto& r : batch) {
    msg_ = format(r);
    // One datagram per message.
    ssize_t n;
    do {
      n = ::send(fd_.get(), msg_.data(), msg_.size(), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN && wait_fd(fd_.get(), POLLOUT, o_.io_timeout_ns))
      n = ::send(fd_.get(), msg_.data(), msg_.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EMSGSIZE) {  // given up on; the rest follows in the next call
      d.rejected = 1;
      d.reason = fmt::format("a {} byte message is larger than a datagram", msg_.size());
      return d;
    }
    if (n < 0) {
      d.error = os_error(fmt::format("send to syslog {}", o_.address)).message;
      fd_.reset();  // ECONNREFUSED and friends: connect again next time
      return d;
    }
    ++d.delivered;
  }
  return d;
}

Delivery SyslogOutput::deliver_stream(std::span<const Record> batch) {
  // TCP and TLS, octet counting: "LEN SP MSG". The frames of a batch go out in
  // writes of up to kWriteBytes, not one send per event.
  constexpr size_t kWriteBytes = 256 << 10;
  Delivery d;
  size_t i = 0;
  while (i < batch.size()) {
    frame_.clear();
    ends_.clear();
    for (; i < batch.size() && (frame_.empty() || frame_.size() < kWriteBytes); ++i) {
      msg_ = format(batch[i]);
      fmt::format_to(std::back_inserter(frame_), "{} ", msg_.size());
      frame_ += msg_;
      ends_.push_back(frame_.size());
    }
    size_t written = 0;
    if (auto st = stream_->write_all(frame_, &written); !st) {
      // Frames written whole count as delivered; a frame cut in the middle cannot be
      // resumed on a new connection, so it is sent whole again.
      d.delivered += static_cast<size_t>(std::upper_bound(ends_.begin(), ends_.end(), written) - ends_.begin());
      d.error = fmt::format("syslog {}: {}", o_.address, st.error().message);
      stream_.reset();
      return d;
    }
    d.delivered += ends_.size();
  }
  return d;
}

}  // namespace vigil::sinks
