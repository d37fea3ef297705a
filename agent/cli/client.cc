#include "agent/cli/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "agent/cli/cli.h"
#include "agent/cli/output.h"
#include "agent/config/config.h"
#include "base/fd.h"

namespace vigil::cli {

std::string Globals::socket() const {
  if (!socket_flag.empty()) return socket_flag;
  std::string path = config_path;
  if (path.empty() && std::filesystem::exists("/etc/vigil/vigil.yaml")) path = "/etc/vigil/vigil.yaml";
  if (!path.empty()) {
    auto c = load_config_file(path);
    if (c) return c->control_socket;
    fmt::print(stderr, "vigil: {}\n", c.error().message);
    std::exit(kExitUsage);
  }
  return Config{}.control_socket;
}

namespace {

Fd connect_socket(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    fmt::print(stderr, "vigil: control socket path {} is longer than {} bytes\n", path, sizeof(addr.sun_path) - 1);
    return Fd();
  }
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  addr.sun_family = AF_UNIX;
  std::copy(path.begin(), path.end(), addr.sun_path);
  if (!fd || connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    fmt::print(stderr, "vigil: cannot connect to vigild at {}: {} (is vigild running? try --socket)\n",
               path, std::strerror(errno));
    return Fd();
  }
  return fd;
}

}  // namespace

int request(const std::string& socket_path, const nlohmann::json& req,
            const std::function<bool(const std::string&)>& on_line) {
  return request(socket_path, req, on_line, -1, nullptr);
}

int request(const std::string& socket_path, const nlohmann::json& req,
            const std::function<bool(const std::string&)>& on_line, int tick_ms, const std::function<bool()>& on_tick) {
  Fd fd = connect_socket(socket_path);
  if (!fd) return kExitUsage;
  std::string out = req.dump() + "\n";
  if (send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
    fmt::print(stderr, "vigil: send to {}: {}\n", socket_path, std::strerror(errno));
    return kExitUsage;
  }
  std::string buf;
  char chunk[65536];
  auto next_tick = std::chrono::steady_clock::now() + std::chrono::milliseconds(tick_ms);
  while (true) {
    if (on_tick) {
      auto now = std::chrono::steady_clock::now();
      if (now >= next_tick) {
        if (!on_tick()) return kExitOk;
        next_tick = now + std::chrono::milliseconds(tick_ms);
      }
      pollfd p{fd.get(), POLLIN, 0};
      int wait = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now).count());
      int r = poll(&p, 1, std::max(wait, 1));
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) continue;
    }
    ssize_t n = read(fd.get(), chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, n);
    size_t start = 0, nl;
    while ((nl = buf.find('\n', start)) != std::string::npos) {
      std::string line = buf.substr(start, nl - start);
      start = nl + 1;
      if (!on_line(line)) return kExitOk;
    }
    buf.erase(0, start);
  }
  return kExitOk;
}

namespace {
bool g_terminal_safe = false;
}  // namespace

void terminal_safe_replies(bool on) { g_terminal_safe = on; }

std::optional<nlohmann::json> ask(const std::string& socket_path, const nlohmann::json& req, int& rc) {
  std::optional<nlohmann::json> reply;
  rc = request(socket_path, req, [&](const std::string& line) {
    reply = nlohmann::json::parse(line, nullptr, false);
    return false;
  });
  if (rc != kExitOk) return std::nullopt;
  if (!reply || reply->is_discarded() || !reply->is_object()) {
    fmt::print(stderr, "vigil: no reply from vigild at {}\n", socket_path);
    rc = kExitUsage;
    return std::nullopt;
  }
  if (g_terminal_safe) make_terminal_safe(*reply);
  if (reply->contains("error")) {
    fmt::print(stderr, "vigil: {}\n", (*reply)["error"].dump());
    rc = kExitUsage;
    return std::nullopt;
  }
  return reply;
}

}  // namespace vigil::cli
