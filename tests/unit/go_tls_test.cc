// Go executables: version, crypto/tls functions (symbol table and .gopclntab),
// the RET sites of Read, the per-version offsets table. On Go test peers built
// by this build with Debian's golang-go, plain and stripped.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "base/file.h"
#include "collectors/tls/go_binary.h"
#include "collectors/tls/tls_manager.h"

namespace vigil {
namespace {

TEST(GoVersion, ParsedFromReleaseDevelAndCandidateStrings) {
  auto v = parse_go_version("go1.19.8");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->minor, 19);
  EXPECT_EQ(v->patch, 8);
  EXPECT_EQ(parse_go_version("go1.21rc2")->minor, 21);
  EXPECT_EQ(parse_go_version("devel go1.23-4a5b6c Tue Jan 1")->minor, 23);
  EXPECT_FALSE(parse_go_version("go2"));
  EXPECT_FALSE(parse_go_version(""));
  EXPECT_FALSE(parse_go_version("go1."));
}

TEST(GoVersion, OffsetsTableCoversTheRegisterAbiAndRefusesOlder) {
  GoConnOffsets want{8, 0, 16};
  for (const char* v : {"go1.17", "go1.19.8", "go1.22.5", "go1.30.1"}) {
    auto o = go_conn_offsets(v);
    ASSERT_TRUE(o) << v << ": " << o.error().message;
    EXPECT_EQ(*o, want) << v;
  }
  auto old = go_conn_offsets("go1.16.15");
  ASSERT_FALSE(old);
  EXPECT_NE(old.error().message.find("stack"), std::string::npos) << old.error().message;
  EXPECT_FALSE(go_conn_offsets("gcc-go"));
}

std::vector<uint8_t> buildinfo_header(uint8_t flags) {
  std::vector<uint8_t> b = {0xff, ' ', 'G', 'o', ' ', 'b', 'u', 'i', 'l', 'd', 'i', 'n', 'f', ':', 8, flags};
  b.resize(32, 0);
  return b;
}

TEST(GoBuildInfo, InlineAndPointerFormsAndGarbage) {
  auto none = [](uint64_t, size_t) { return std::vector<uint8_t>{}; };
  auto inl = buildinfo_header(2);
  std::string v = "go1.20.3";
  inl.push_back(static_cast<uint8_t>(v.size()));
  inl.insert(inl.end(), v.begin(), v.end());
  auto got = go_buildinfo_version(inl, none);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(*got, "go1.20.3");
  // Before Go 1.18: a pointer to a string header (data, len) elsewhere in the file.
  auto ptr = buildinfo_header(0);
  ptr[16] = 0x00, ptr[17] = 0x10;  // header at 0x1000
  std::string old = "go1.16.15";
  auto read = [&](uint64_t addr, size_t n) -> std::vector<uint8_t> {
    std::vector<uint8_t> out(n, 0);
    if (addr == 0x1000 && n == 16) {
      out[1] = 0x20;  // data at 0x2000
      out[8] = static_cast<uint8_t>(old.size());
      return out;
    }
    if (addr == 0x2000 && n == old.size()) return {old.begin(), old.end()};
    return {};
  };
  got = go_buildinfo_version(ptr, read);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(*got, old);
  EXPECT_FALSE(go_buildinfo_version(ptr, none));  // points nowhere
  auto cut = buildinfo_header(2);
  cut.push_back(200);  // longer than what follows
  EXPECT_FALSE(go_buildinfo_version(cut, none));
  EXPECT_FALSE(go_buildinfo_version(std::vector<uint8_t>(40, 0), none));
  EXPECT_FALSE(go_buildinfo_version(buildinfo_header(1), none));  // big-endian
}

TEST(GoPclntab, TruncatedOrForeignTablesAreErrorsNotCrashes) {
  std::vector<std::string_view> wanted = {"main.main"};
  EXPECT_FALSE(go_pclntab_functions(std::vector<uint8_t>(8, 0), 0, wanted));
  std::vector<uint8_t> t(72, 0);
  t[0] = 0xf0, t[1] = t[2] = t[3] = 0xff, t[6] = 1, t[7] = 8;
  t[8] = 0xff, t[9] = 0xff;  // 65535 functions in a 72-byte table
  auto r = go_pclntab_functions(t, 0, wanted);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("out of bounds"), std::string::npos) << r.error().message;
  t[0] = 0xfb;  // Go 1.2–1.15 layout
  EXPECT_FALSE(go_pclntab_functions(t, 0, wanted));
}

TEST(X86Returns, FoundPastPaddingAndUndecodableBytes) {
  // mov rbx, rax; ret; int3; ret; (0x06 is invalid in 64-bit mode) ; ret
  const uint8_t code[] = {0x48, 0x89, 0xc3, 0xc3, 0xcc, 0xc3, 0x06, 0xc3};
  auto r = x86_return_offsets(code);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, (std::vector<uint64_t>{3, 5, 7}));
}

std::string file_bytes(const std::string& path, uint64_t off, size_t n) {
  auto b = read_range(path, off, n);
  return b ? std::string(b->begin(), b->end()) : std::string();
}

TEST(GoBinary, SymbolTableAndPclntabAgreeOnThePlainPeer) {
  auto sym = inspect_go_binary(VIGIL_GO_PEER);
  ASSERT_TRUE(sym) << sym.error().message;
  ASSERT_TRUE(*sym);
  const GoTlsBinary& g = **sym;
  EXPECT_TRUE(g.error.empty()) << g.error;
  EXPECT_EQ(g.version, VIGIL_GO_VERSION);
  EXPECT_EQ(g.symbols, "symtab");
  EXPECT_EQ(g.conn, (GoConnOffsets{8, 0, 16}));
  ASSERT_FALSE(g.read_returns.empty());
  for (uint64_t r : g.read_returns) {
    EXPECT_GT(r, g.read_offset);
    EXPECT_EQ(file_bytes(VIGIL_GO_PEER, r, 1), "\xc3");  // a RET, in the file
  }
  auto pcl = inspect_go_binary(VIGIL_GO_PEER, /*prefer_pclntab=*/true);
  ASSERT_TRUE(pcl && *pcl);
  EXPECT_EQ((*pcl)->symbols, "pclntab");
  EXPECT_EQ((*pcl)->write_offset, g.write_offset);
  EXPECT_EQ((*pcl)->read_offset, g.read_offset);
  EXPECT_EQ((*pcl)->read_returns, g.read_returns);
}

TEST(GoBinary, StrippedPeerFoundThroughPclntab) {
  auto plain = inspect_go_binary(VIGIL_GO_PEER);
  auto s = inspect_go_binary(VIGIL_GO_PEER_STRIPPED);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_TRUE(*s);
  EXPECT_TRUE((*s)->error.empty()) << (*s)->error;
  EXPECT_EQ((*s)->symbols, "pclntab");
  EXPECT_EQ((*s)->version, VIGIL_GO_VERSION);
  ASSERT_TRUE(plain && *plain);
  // Same code, so the same number of returns and the same entry bytes.
  EXPECT_EQ((*s)->read_returns.size(), (*plain)->read_returns.size());
  EXPECT_EQ(file_bytes(VIGIL_GO_PEER_STRIPPED, (*s)->read_offset, 32),
            file_bytes(VIGIL_GO_PEER, (*plain)->read_offset, 32));
  EXPECT_EQ(file_bytes(VIGIL_GO_PEER_STRIPPED, (*s)->write_offset, 32),
            file_bytes(VIGIL_GO_PEER, (*plain)->write_offset, 32));
  auto id = identify_tls_library(VIGIL_GO_PEER_STRIPPED);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->kind, "go");
}

TEST(GoBinary, NonGoFilesAreNotGo) {
  auto c = inspect_go_binary("/usr/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_FALSE(*c);
  EXPECT_FALSE(inspect_go_binary("/etc/hostname"));
  // A Go binary cut short: an error or "not probed", never a crash.
  std::ifstream in(VIGIL_GO_PEER_STRIPPED, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string path = ::testing::TempDir() + "/go_cut";
  std::ofstream(path, std::ios::binary) << all.substr(0, all.size() / 2);
  auto cut = inspect_go_binary(path);
  EXPECT_TRUE(!cut || !*cut || !(*cut)->error.empty());
}

}  // namespace
}  // namespace vigil
