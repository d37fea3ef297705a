#include "collectors/host/net.h"

#include <algorithm>
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

bool tcp_table_listens_on(const std::string& table, uint16_t port) {
  // "  sl  local_address rem_address   st ..." with local_address "ADDR:PORT" in hex.
  size_t pos = table.find('\n');
  while (pos != std::string::npos && pos + 1 < table.size()) {
    size_t end = table.find('\n', pos + 1);
    std::string_view line(table.data() + pos + 1, (end == std::string::npos ? table.size() : end) - pos - 1);
    pos = end;
    size_t colon = line.find(':');                 // after "sl"
    if (colon == std::string_view::npos) continue;
    size_t local = line.find_first_not_of(' ', colon + 1);
    size_t pcolon = line.find(':', local);
    size_t sp = line.find(' ', pcolon);
    if (local == std::string_view::npos || pcolon == std::string_view::npos || sp == std::string_view::npos) continue;
    unsigned long p = std::strtoul(std::string(line.substr(pcolon + 1, sp - pcolon - 1)).c_str(), nullptr, 16);
    size_t rem = line.find_first_not_of(' ', sp);
    size_t st = rem == std::string_view::npos ? rem : line.find(' ', rem);
    if (st == std::string_view::npos) continue;
    st = line.find_first_not_of(' ', st);
    if (p == port && line.substr(st, 2) == "0A") return true;
  }
  return false;
}

}  // namespace vigil
