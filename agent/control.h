// The control socket: a Unix stream socket (0600) speaking JSON lines.
// Requests: {"cmd":"status"} -> one JSON object; {"cmd":"trace", "pid":N,
// "comm":"x", "kinds":[...]} -> the agent streams matching events until the
// client goes. Served from the agent's single event loop (no threads).
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "events.h"

namespace vigil {

struct TraceFilter {
  std::optional<uint32_t> pid;
  std::string comm;
  std::vector<std::string> kinds;

  bool matches(const Event& e) const;
  nlohmann::json to_json() const;
  static Result<TraceFilter> from_json(const nlohmann::json& j);
};

class ControlServer {
 public:
  using StatusFn = std::function<nlohmann::json()>;
  // Other commands ({"cmd":"policy_apply", ...}): one JSON reply, or nullopt
  // when the command is unknown.
  using CommandFn = std::function<std::optional<nlohmann::json>(const std::string& cmd, const nlohmann::json& req)>;

  static Result<std::unique_ptr<ControlServer>> listen(const std::string& path, StatusFn status);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Appends the fds to poll; then pass the same entries back to service().
  void fill_pollfds(std::vector<pollfd>& fds) const;
  void service(const pollfd* fds, size_t count);
  void publish(const Event& event, std::string_view line);
  size_t subscribers() const;
  void set_command_handler(CommandFn fn) { command_ = std::move(fn); }
  uint64_t dropped() const { return dropped_; }

 private:
  struct Client {
    int fd = -1;
    std::string in, out;
    bool tracing = false;
    bool close_after_flush = false;
    TraceFilter filter;
  };
  ControlServer(int fd, std::string path, StatusFn status)
      : listen_fd_(fd), path_(std::move(path)), status_(std::move(status)) {}
  void accept_clients();
  void on_readable(Client& c);
  void handle_request(Client& c, const std::string& line);
  void flush(Client& c);

  int listen_fd_;
  std::string path_;
  StatusFn status_;
  CommandFn command_;
  std::vector<std::unique_ptr<Client>> clients_;
  uint64_t dropped_ = 0;
};

}  // namespace vigil
