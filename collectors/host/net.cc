#include "collectors/host/net.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string_view>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <fmt/format.h>

namespace vigil {

std::string format_addr(uint16_t family, const uint8_t addr[16]) {
  char buf[INET6_ADDRSTRLEN] = {};
  int af = family == AF_INET6 ? AF_INET6 : AF_INET;
  if (!inet_ntop(af, addr, buf, sizeof(buf))) return "?";
  return buf;
}

std::string format_mapped_addr(const uint8_t a[16]) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  bool mapped = std::equal(a, a + 12, kMapped);
  return mapped ? format_addr(AF_INET, a + 12) : format_addr(AF_INET6, a);
}

std::string format_endpoint(uint16_t family, const uint8_t addr[16], uint16_t port) {
  if (family == AF_INET6) return fmt::format("[{}]:{}", format_addr(family, addr), port);
  return fmt::format("{}:{}", format_addr(family, addr), port);
}

const char* family_name(uint16_t family) {
  switch (family) {
    case AF_INET: return "ipv4";
    case AF_INET6: return "ipv6";
    default: return "unknown";
  }
}

}  // namespace vigil

namespace vigil {

std::vector<SocketRow> parse_socket_table(std::string_view table) {
  // "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode ..."
  // with addresses "ADDR:PORT" and the state in hex; the first line is the header.
  std::vector<SocketRow> rows;
  size_t pos = table.find('\n');
  while (pos != std::string_view::npos && pos + 1 < table.size()) {
    size_t end = table.find('\n', pos + 1);
    std::string_view line = table.substr(pos + 1, (end == std::string_view::npos ? table.size() : end) - pos - 1);
    pos = end;
    std::string_view field[10];
    size_t n = 0, i = 0;
    while (n < 10) {
      size_t start = line.find_first_not_of(' ', i);
      if (start == std::string_view::npos) break;
      i = line.find(' ', start);
      field[n++] = line.substr(start, i == std::string_view::npos ? std::string_view::npos : i - start);
      if (i == std::string_view::npos) break;
    }
    if (n < 10) continue;
    size_t colon = field[1].rfind(':');
    if (colon == std::string_view::npos) continue;
    auto hex = [](std::string_view f, int base, uint64_t& out) {
      auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), out, base);
      return ec == std::errc() && p == f.data() + f.size();
    };
    uint64_t port = 0, state = 0, inode = 0;
    if (!hex(field[1].substr(colon + 1), 16, port) || !hex(field[3], 16, state) || !hex(field[9], 10, inode) ||
        port > 0xffff || state > 0xff)
      continue;
    rows.push_back({static_cast<uint16_t>(port), static_cast<uint8_t>(state), inode});
  }
  return rows;
}

std::set<uint16_t> listening_tcp_ports(std::string_view table) {
  std::set<uint16_t> out;
  for (const SocketRow& r : parse_socket_table(table))
    if (r.state == kSocketListen) out.insert(r.local_port);
  return out;
}

}  // namespace vigil
