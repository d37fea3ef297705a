// Security review F2-F5 (../shared/SECURITY-REVIEW.md): executables an
// unprivileged user crafts and runs, as the TLS scan reads them. Each parse runs
// in a child process, so that a crash is a failed test, not a dead test runner.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include "collectors/tls/go_binary.h"
#include "tests/common/elf_builder.h"

namespace vigil {
namespace {

const std::string kData = std::string(VIGIL_UNIT_DATA) + "/security/";

// Runs `f` in a child: "exit N" or "signal N (name)".
std::string in_child(const std::function<int()>& f) {
  pid_t pid = fork();
  if (pid == 0) _exit(f());
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st)) return fmt::format("signal {} ({})", WTERMSIG(st), strsignal(WTERMSIG(st)));
  return fmt::format("exit {}", WEXITSTATUS(st));
}

// 0: inspect_go_binary said "not probeable" (an error or `error` set); 1: it
// accepted the file as probeable.
int refused(const std::string& path) {
  auto r = inspect_go_binary(path);
  return (!r || !*r || !(*r)->error.empty()) ? 0 : 1;
}

std::string write_temp(const std::string& name, const std::string& bytes) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

TEST(SecurityF2, BuildInfoPointerThatWrapsReadsNothingOutsideTheFile) {
  // The string header at 2^64-8: `addr + n` wrapped and a section at address 0
  // passed, then 256 bytes before the mapping were copied (SIGSEGV).
  EXPECT_EQ(in_child([] { return refused(kData + "poc-buildinfo-wrap.elf"); }), "exit 0");
  auto r = inspect_go_binary(kData + "poc-buildinfo-wrap.elf");
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->error, "Go build info: version header unreadable");
  EXPECT_EQ((*r)->version, "");
}

TEST(SecurityF3, ReadSymbolSizeThatWrapsIsRefused) {
  // crypto/tls.(*Conn).Read with st_size 2^64-8: capstone walked off the map (SIGBUS).
  EXPECT_EQ(in_child([] { return refused(kData + "poc-symtab-size.elf"); }), "exit 0");
  auto r = inspect_go_binary(kData + "poc-symtab-size.elf");
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->error, "crypto/tls functions outside .text");
}

TEST(SecurityF4, PclntabFunctionCountThatWrapsIsRefused) {
  EXPECT_EQ(in_child([] { return refused(kData + "poc-pclntab-nfunc.elf"); }), "exit 0");
  // nfunc = 2^63: (nfunc*2+1)*8 wrapped to 8 and the walk read past the section.
  std::vector<uint8_t> t = {0xfa, 0xff, 0xff, 0xff, 0, 0, 1, 8};
  auto word = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) t.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  for (uint64_t w : {uint64_t{1} << 63, uint64_t{0}, uint64_t{0}, uint64_t{0}, uint64_t{0}, uint64_t{0},
                     uint64_t{64}})
    word(w);
  t.resize(t.size() + 24, 0);
  auto p = go_pclntab_functions(t, 0x401000, {"crypto/tls.(*Conn).Read"});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, ".gopclntab: tables out of bounds");
  // A function record offset near 2^64: `funcoff + field` wrapped.
  std::vector<uint8_t> u = {0xfa, 0xff, 0xff, 0xff, 0, 0, 1, 8};
  t.swap(u);
  for (uint64_t w : {uint64_t{1}, uint64_t{0}, uint64_t{0}, uint64_t{0}, uint64_t{0}, uint64_t{0}, uint64_t{64}})
    word(w);
  t.resize(64, 0);
  word(0x401000);             // entry 0
  word(~uint64_t{0} - 3);     // its funcoff
  word(0x402000);             // end of text
  t.resize(t.size() + 16, 0);
  p = go_pclntab_functions(t, 0x401000, {"crypto/tls.(*Conn).Read"});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, ".gopclntab: function record out of bounds");
}

TEST(SecurityF5, ReadOfThousandsOfRetsIsNotProbed) {
  // One uprobe per RET: 4096 of them stalled the loop past the watchdog.
  std::string path = write_temp("f5-rets.elf", testing::go_tls_elf(std::string(4096, '\xc3')));
  auto r = inspect_go_binary(path);
  ASSERT_TRUE(r && *r) << (r ? "not Go" : r.error().message);
  EXPECT_EQ((*r)->error, fmt::format("more than {} RET instructions in crypto/tls.(*Conn).Read", kMaxReadReturns));
  EXPECT_TRUE((*r)->read_returns.empty());
  // A Read larger than any real one is refused before it is disassembled.
  path = write_temp("f5-big.elf", testing::go_tls_elf(std::string(kMaxReadBytes + 1, '\x90') + "\xc3"));
  r = inspect_go_binary(path);
  ASSERT_TRUE(r && *r);
  EXPECT_NE((*r)->error.find("more than the"), std::string::npos) << (*r)->error;
  // The same shape with a sane Read is probed: the caps do not refuse real code.
  path = write_temp("f5-ok.elf", testing::go_tls_elf(std::string(100, '\x90') + "\xc3\x90\xc3"));
  r = inspect_go_binary(path);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->error, "");
  EXPECT_EQ((*r)->read_returns.size(), 2u);
}

}  // namespace
}  // namespace vigil
