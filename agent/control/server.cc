#include "agent/control/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "base/log.h"

namespace vigil {
namespace {
constexpr size_t kMaxRequest = 8u << 20;  // a policy file rides in one request
constexpr size_t kMaxBacklog = 4u << 20;  // per trace client; beyond it events are dropped
}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::listen(const std::string& path, StatusFn status) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return Error{fmt::format("control socket path {} is longer than {} bytes", path,
                             sizeof(addr.sun_path) - 1)};
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Error{fmt::format("create directory {}: {}", parent.string(), ec.message())};

  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return os_error("create control socket");
  addr.sun_family = AF_UNIX;
  std::copy(path.begin(), path.end(), addr.sun_path);
  // A socket file left by a killed agent would make bind fail: replace it,
  // unless another agent is still answering on it.
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
    return Error{fmt::format("control socket {} is in use: is another vigild running?", path)};
  unlink(path.c_str());
  // 0600 from the start: no window where another user could connect.
  mode_t old = umask(0177);
  int rc = bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (rc != 0 || ::listen(fd.get(), 16) != 0) return os_error(fmt::format("listen on control socket {}", path));
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(fd), path, std::move(status)));
}

ControlServer::~ControlServer() { unlink(path_.c_str()); }

size_t ControlServer::subscribers() const {
  return std::count_if(clients_.begin(), clients_.end(), [](const auto& c) { return c->tracing; });
}

void ControlServer::fill_pollfds(std::vector<pollfd>& fds) const {
  fds.push_back({listen_fd_.get(), POLLIN, 0});
  for (const auto& c : clients_)
    fds.push_back({c->fd.get(), static_cast<short>(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});
}

void ControlServer::service(const pollfd* fds, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (!fds[i].revents) continue;
    if (fds[i].fd == listen_fd_.get()) {
      accept_clients();
      continue;
    }
    auto it = std::find_if(clients_.begin(), clients_.end(),
                           [&](const auto& c) { return c->fd.get() == fds[i].fd; });
    if (it == clients_.end()) continue;
    Client& c = **it;
    if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) on_readable(c);
    if (c.fd && !c.out.empty()) flush(c);
  }
  std::erase_if(clients_, [](const auto& c) { return !c->fd; });
}

void ControlServer::accept_clients() {
  while (true) {
    Fd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;
    auto c = std::make_unique<Client>();
    c->fd = std::move(fd);
    clients_.push_back(std::move(c));
  }
}

void ControlServer::on_readable(Client& c) {
  char buf[4096];
  while (true) {
    ssize_t n = read(c.fd.get(), buf, sizeof(buf));
    if (n > 0) {
      if (c.tracing) continue;  // a tracing client has nothing more to say
      c.in.append(buf, n);
      if (c.in.size() > kMaxRequest) {
        c.out = R"({"error":"request too long"})" "\n";
        c.close_after_flush = true;
        c.in.clear();
        return;
      }
      size_t nl;
      while (!c.tracing && (nl = c.in.find('\n')) != std::string::npos) {
        std::string line = c.in.substr(0, nl);
        c.in.erase(0, nl + 1);
        handle_request(c, line);
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    c.fd.reset();  // EOF or error: the client is gone
    return;
  }
}

void ControlServer::handle_request(Client& c, const std::string& line) {
  nlohmann::json req = nlohmann::json::parse(line, nullptr, false);
  std::string cmd = req.is_object() && req.contains("cmd") && req["cmd"].is_string()
                        ? req["cmd"].get<std::string>() : "";
  c.close_after_flush = true;
  if (cmd == control::kStatus) {
    c.out += status_().dump() + "\n";
  } else if (cmd == control::kTrace) {
    auto f = TraceFilter::from_json(req);
    if (!f) {
      c.out += nlohmann::json{{"error", f.error().message}}.dump() + "\n";
      return;
    }
    c.filter = std::move(*f);
    c.tracing = true;
    c.close_after_flush = false;
  } else if (auto h = handlers_.find(cmd); h != handlers_.end()) {
    c.out += h->second(req).dump() + "\n";
  } else {
    std::string known = fmt::format("\"{}\", \"{}\"", control::kStatus, control::kTrace);
    for (const auto& [name, _] : handlers_) known += fmt::format(", \"{}\"", name);
    c.out += nlohmann::json{{"error", fmt::format("unknown request; expected {{\"cmd\": one of {}}}", known)}}
                 .dump() + "\n";
  }
}

void ControlServer::flush(Client& c) {
  while (!c.out.empty()) {
    ssize_t n = send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      c.fd.reset();
      return;
    }
    c.out.erase(0, n);
  }
  if (c.close_after_flush) c.fd.reset();
}

void ControlServer::publish(const Event& event, std::string_view line) {
  for (auto& c : clients_) {
    if (!c->tracing || !c->fd || !c->filter.matches(event)) continue;
    if (c->out.size() > kMaxBacklog) {
      ++dropped_;
      continue;
    }
    c->out.append(line);
    c->out.push_back('\n');
  }
}

}  // namespace vigil
