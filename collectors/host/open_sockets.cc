#include "collectors/host/open_sockets.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <map>
#include <set>
#include <string_view>

#include "base/file.h"
#include "bpf/include/vigil/abi.h"
#include "collectors/host/net.h"

namespace vigil {
namespace {

// What one network namespace's socket tables say: the connected sockets by
// inode (with their protocol and local port), and the TCP ports that listen.
struct Namespace {
  struct Conn {
    bool tcp;
    uint16_t port;
  };
  std::map<uint64_t, Conn> connected;
  std::set<uint16_t> listening;
};

Namespace read_namespace(const std::string& pid_dir) {
  Namespace ns;
  for (const char* table : {"tcp", "tcp6", "udp", "udp6"}) {
    bool tcp = table[0] == 't';
    for (const SocketRow& r : parse_socket_table(read_small_file(pid_dir + "/net/" + table))) {
      if (tcp && r.state == kSocketListen) ns.listening.insert(r.local_port);
      else if (r.state == kSocketEstablished && r.inode != 0) ns.connected[r.inode] = {tcp, r.local_port};
    }
  }
  return ns;
}

// The inode of a "socket:[INODE]" fd link, else 0.
uint64_t socket_inode(const std::string& link_path) {
  char buf[64];
  ssize_t n = readlink(link_path.c_str(), buf, sizeof(buf));
  std::string_view link(buf, n > 0 ? static_cast<size_t>(n) : 0);
  if (!link.starts_with("socket:[") || !link.ends_with("]")) return 0;
  uint64_t ino = 0;
  auto [ptr, ec] = std::from_chars(link.data() + 8, link.data() + link.size() - 1, ino);
  return ec == std::errc() && ptr == link.data() + link.size() - 1 ? ino : 0;
}

}  // namespace

OpenSocketScan find_open_sockets(const std::string& proc_root, uint32_t skip_pid, size_t limit) {
  OpenSocketScan out;
  std::map<uint64_t, Namespace> namespaces;  // by the inode of /proc/PID/ns/net
  for_each_numeric_entry(proc_root, [&](uint32_t pid) {
    if (pid == skip_pid) return;
    std::string dir = proc_root + "/" + std::to_string(pid);
    struct stat ns_st {};
    if (stat((dir + "/ns/net").c_str(), &ns_st) != 0) return;
    Namespace* ns = nullptr;
    for_each_numeric_entry(dir + "/fd", [&](uint32_t fd) {
      uint64_t ino = socket_inode(dir + "/fd/" + std::to_string(fd));
      if (ino == 0) return;
      if (!ns) {  // read once per namespace, and only for processes holding a socket
        auto it = namespaces.find(ns_st.st_ino);
        if (it == namespaces.end()) it = namespaces.emplace(ns_st.st_ino, read_namespace(dir)).first;
        ns = &it->second;
      }
      auto c = ns->connected.find(ino);
      if (c == ns->connected.end()) return;  // listening, unconnected, not IP
      if (out.sockets.size() >= limit) {
        ++out.over_limit;
        return;
      }
      bool server = c->second.tcp && ns->listening.count(c->second.port);
      out.sockets.push_back({pid, static_cast<int32_t>(fd),
                             static_cast<uint8_t>(server ? VIGIL_ROLE_SERVER : VIGIL_ROLE_CLIENT)});
    });
  });
  return out;
}

}  // namespace vigil
