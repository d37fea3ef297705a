#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "collectors/host/net.h"

namespace vigil {
namespace {

std::array<uint8_t, 16> addr_of(int af, const char* text) {
  std::array<uint8_t, 16> a{};
  EXPECT_EQ(inet_pton(af, text, a.data()), 1) << text;
  return a;
}

TEST(Net, FormatsIpv4) {
  auto a = addr_of(AF_INET, "127.0.0.1");
  EXPECT_EQ(format_addr(AF_INET, a.data()), "127.0.0.1");
  EXPECT_EQ(format_endpoint(AF_INET, a.data(), 8080), "127.0.0.1:8080");
  auto z = addr_of(AF_INET, "0.0.0.0");
  EXPECT_EQ(format_endpoint(AF_INET, z.data(), 0), "0.0.0.0:0");
}

TEST(Net, FormatsIpv6) {
  auto lo = addr_of(AF_INET6, "::1");
  EXPECT_EQ(format_addr(AF_INET6, lo.data()), "::1");
  EXPECT_EQ(format_endpoint(AF_INET6, lo.data(), 443), "[::1]:443");
  auto full = addr_of(AF_INET6, "2001:db8::8a2e:370:7334");
  EXPECT_EQ(format_addr(AF_INET6, full.data()), "2001:db8::8a2e:370:7334");
}

TEST(Net, FormatsIpv4MappedIpv6) {
  auto m = addr_of(AF_INET6, "::ffff:127.0.0.2");
  EXPECT_EQ(format_addr(AF_INET6, m.data()), "::ffff:127.0.0.2");
}

TEST(Net, FamilyNames) {
  EXPECT_STREQ(family_name(AF_INET), "ipv4");
  EXPECT_STREQ(family_name(AF_INET6), "ipv6");
  EXPECT_STREQ(family_name(AF_UNIX), "unknown");
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

TEST(TcpTable, ListeningPortsAreTheServerSide) {
  const std::string table =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0\n"
      "   1: 0100007F:1F90 0100007F:A4B2 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4\n"
      "   2: 0100007F:A4B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4\n";
  EXPECT_TRUE(tcp_table_listens_on(table, 8080));
  EXPECT_FALSE(tcp_table_listens_on(table, 0xA4B2));  // only an established socket there
  EXPECT_FALSE(tcp_table_listens_on("", 8080));
  EXPECT_FALSE(tcp_table_listens_on("header only\n", 8080));
}

}  // namespace
}  // namespace vigil
