// The metrics listener (config metrics.listen, default 127.0.0.1:9464): GET
// /metrics (Prometheus text), /healthz (the loop is alive) and /readyz (programs
// attached and sinks open). One short request per connection, served without
// blocking from vigild's poll loop; a client that does not finish its request
// within 5 s is dropped.
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace vigil::metrics {

struct Handlers {
  std::function<std::string()> metrics;          // the exposition
  std::function<std::string()> not_ready_reason;  // "" when ready
};

class Server {
 public:
  // `listen` is host:port ([v6]:port); port 0 picks one (see port()).
  static Result<std::unique_ptr<Server>> listen(const std::string& listen, Handlers h);
  void fill_pollfds(std::vector<pollfd>& fds) const;
  void service(const pollfd* fds, size_t count, uint64_t now_ns);
  uint16_t port() const { return port_; }
  uint64_t requests() const { return requests_; }

 private:
  struct Client {
    Fd fd;
    std::string in, out;
    uint64_t since_ns = 0;
    bool answered = false;
  };
  Server(Fd fd, Handlers h) : fd_(std::move(fd)), h_(std::move(h)) {}
  void on_readable(Client& c);
  void answer(Client& c);

  Fd fd_;
  Handlers h_;
  uint16_t port_ = 0;
  uint64_t requests_ = 0;
  // The exposition is built at most once a second, however often anyone on the
  // host scrapes (each build walks the inventory; security review F15).
  std::string metrics_;
  uint64_t metrics_at_ns_ = 0;
  std::vector<std::unique_ptr<Client>> clients_;
};

}  // namespace vigil::metrics
