// The control socket: a Unix stream socket (0600) speaking the JSON lines of
// protocol.h. `status` and the commands registered with on() get one reply;
// `trace` streams matching events. Served from the agent's single event loop
// (no threads).
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/control/protocol.h"
#include "agent/events/events.h"
#include "base/fd.h"
#include "base/result.h"

namespace vigil {

class ControlServer {
 public:
  using StatusFn = std::function<nlohmann::json()>;
  // A command's handler: the request object in, one JSON reply out.
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  static Result<std::unique_ptr<ControlServer>> listen(const std::string& path, StatusFn status);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Appends the fds to poll; then pass the same entries back to service().
  void fill_pollfds(std::vector<pollfd>& fds) const;
  void service(const pollfd* fds, size_t count);
  void publish(const Event& event, std::string_view line);
  size_t subscribers() const;
  void on(std::string_view cmd, Handler handler) { handlers_[std::string(cmd)] = std::move(handler); }
  uint64_t dropped() const { return dropped_; }

 private:
  struct Client {
    Fd fd;
    std::string in, out;
    bool tracing = false;
    bool close_after_flush = false;
    TraceFilter filter;
  };
  ControlServer(Fd fd, std::string path, StatusFn status)
      : listen_fd_(std::move(fd)), path_(std::move(path)), status_(std::move(status)) {}
  void accept_clients();
  void on_readable(Client& c);
  void handle_request(Client& c, const std::string& line);
  void flush(Client& c);

  Fd listen_fd_;
  std::string path_;
  StatusFn status_;
  std::map<std::string, Handler, std::less<>> handlers_;
  std::vector<std::unique_ptr<Client>> clients_;
  uint64_t dropped_ = 0;
};

}  // namespace vigil
