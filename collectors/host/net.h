// Address formatting for the kernel's fixed 16-byte address fields.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

// family is AF_INET (first 4 bytes used) or AF_INET6; bytes in network order.
std::string format_addr(uint16_t family, const uint8_t addr[16]);
// An IPv6 address, IPv4-mapped ones (::ffff:a.b.c.d) shown as IPv4.
std::string format_mapped_addr(const uint8_t addr[16]);
// "1.2.3.4:80", "[::1]:443"
std::string format_endpoint(uint16_t family, const uint8_t addr[16], uint16_t port);
const char* family_name(uint16_t family);  // "ipv4" | "ipv6" | "unknown"

// One row of a socket table (/proc/PID/net/tcp, tcp6, udp, udp6).
struct SocketRow {
  uint16_t local_port = 0;
  uint8_t state = 0;  // TCP_ESTABLISHED 1, TCP_LISTEN 10; UDP: 1 when connected
  uint64_t inode = 0;
};
inline constexpr uint8_t kSocketEstablished = 1, kSocketListen = 10;
// The rows of a socket table's text; lines that do not parse are skipped.
std::vector<SocketRow> parse_socket_table(std::string_view table);

// The ports of the TCP table text's (/proc/PID/net/tcp or tcp6) listening
// sockets: a connection on one of them is the server side.
std::set<uint16_t> listening_tcp_ports(std::string_view table);

}  // namespace vigil
