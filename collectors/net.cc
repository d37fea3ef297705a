#include "net.h"

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
