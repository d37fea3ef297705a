#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "bpf/include/vigil/abi.h"
#include "collectors/host/net.h"
#include "collectors/host/open_sockets.h"

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
  // 0xA4B2 has only an established socket.
  EXPECT_EQ(listening_tcp_ports(table), std::set<uint16_t>{8080});
  EXPECT_TRUE(listening_tcp_ports("").empty());
  EXPECT_TRUE(listening_tcp_ports("header only\n").empty());
}

TEST(SocketTable, RowsWithPortStateAndInode) {
  const std::string table =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1 0 100 0\n"
      "   1: 00000000000000000000000001000000:A4B2 00000000000000000000000001000000:1F90 01 00000000:00000000 "
      "00:00000000 00000000  1000        0 4242 1 0 20 4\n"
      "garbage line\n"
      "   2: 0100007F:ZZZZ 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4\n";
  auto rows = parse_socket_table(table);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].local_port, 8080);
  EXPECT_EQ(rows[0].state, kSocketListen);
  EXPECT_EQ(rows[0].inode, 11u);
  EXPECT_EQ(rows[1].local_port, 0xA4B2);
  EXPECT_EQ(rows[1].state, kSocketEstablished);
  EXPECT_EQ(rows[1].inode, 4242u);
  EXPECT_TRUE(parse_socket_table("").empty());
}

namespace fs = std::filesystem;

// A fake /proc: two processes in one network namespace (a client and the
// server it talks to), one in another, and fds that are not connected sockets.
class OpenSockets : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / fmt::format("vigil_open_sockets_{}", getpid());
    fs::remove_all(root_);
    fs::create_directories(root_ / "ns");
    std::ofstream(root_ / "ns" / "net1") << "";
    std::ofstream(root_ / "ns" / "net2") << "";
    const std::string head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    auto row = [](int sl, int lport, int rport, const char* st, int inode) {
      return fmt::format("   {}: 0100007F:{:04X} 0100007F:{:04X} {} 00000000:00000000 00:00000000 00000000     0        0 "
                         "{} 1 0 20 4\n", sl, lport, rport, st, inode);
    };
    // Namespace 1: nginx listens on 8080 (inode 10) and holds the accepted side
    // (inode 11) of a client's connection (inode 12); a connected UDP socket (13).
    std::string tcp1 = head + row(0, 8080, 0, "0A", 10) + row(1, 8080, 40000, "01", 11) + row(2, 40000, 8080, "01", 12);
    std::string udp1 = head + row(0, 50000, 53, "01", 13) + row(1, 5353, 0, "07", 14);
    add(100, "net1", tcp1, udp1, {{3, "socket:[10]"}, {4, "socket:[11]"}, {5, "/var/log/nginx/access.log"}});
    add(200, "net1", tcp1, udp1, {{3, "socket:[12]"}, {4, "socket:[13]"}, {5, "socket:[14]"}, {6, "pipe:[99]"}});
    // Namespace 2: its own table; inode 11 there is not connected.
    std::string tcp2 = head + row(0, 9000, 0, "0A", 11) + row(1, 41000, 9000, "01", 21);
    add(300, "net2", tcp2, head, {{7, "socket:[21]"}, {8, "socket:[11]"}});
    add(400, "net1", tcp1, udp1, {{3, "socket:[12]"}});  // the agent itself
    fs::create_directories(root_ / "self");
  }
  void TearDown() override { fs::remove_all(root_); }

  void add(uint32_t pid, const char* ns, const std::string& tcp, const std::string& udp,
           const std::vector<std::pair<int, std::string>>& fds) {
    fs::path d = root_ / std::to_string(pid);
    fs::create_directories(d / "fd");
    fs::create_directories(d / "net");
    fs::create_directories(d / "ns");
    fs::create_symlink(root_ / "ns" / ns, d / "ns" / "net");
    std::ofstream(d / "net" / "tcp") << tcp;
    std::ofstream(d / "net" / "tcp6") << "";
    std::ofstream(d / "net" / "udp") << udp;
    for (const auto& [fd, link] : fds) fs::create_symlink(link, d / "fd" / std::to_string(fd));
  }

  fs::path root_;
};

TEST_F(OpenSockets, ConnectedSocketsWithTheirSide) {
  auto scan = find_open_sockets(root_.string(), 400, 100);
  std::vector<std::tuple<uint32_t, int32_t, uint8_t>> got;
  for (const auto& s : scan.sockets) got.emplace_back(s.pid, s.fd, s.role);
  std::sort(got.begin(), got.end());
  using T = std::tuple<uint32_t, int32_t, uint8_t>;
  EXPECT_EQ(got, (std::vector<T>{{100, 4, VIGIL_ROLE_SERVER},
                                 {200, 3, VIGIL_ROLE_CLIENT},
                                 {200, 4, VIGIL_ROLE_CLIENT},
                                 {300, 7, VIGIL_ROLE_CLIENT}}));
  EXPECT_EQ(scan.over_limit, 0u);
}

TEST_F(OpenSockets, LimitCountsWhatIsLeftOut) {
  auto scan = find_open_sockets(root_.string(), 400, 3);
  EXPECT_EQ(scan.sockets.size(), 3u);
  EXPECT_EQ(scan.over_limit, 1u);
  EXPECT_TRUE(find_open_sockets((root_ / "missing").string(), 0, 10).sockets.empty());
}

}  // namespace
}  // namespace vigil
