// TLS library identification from ELF symbols, on the libraries Debian ships
// (OpenSSL 3 is always there; BoringSSL comes with android-libboringssl-dev).
#include <gtest/gtest.h>

#include <filesystem>

#include "collectors/tls/tls_manager.h"
#include "collectors/kernel/uprobe.h"
#include "base/caps.h"
#include "base/file.h"

#include <cstring>

namespace vigil {
namespace {

TEST(TlsIdentify, OpenSsl3SharedLibrary) {
  auto id = identify_tls_library("/usr/lib/x86_64-linux-gnu/libssl.so.3");
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->kind, "openssl-3");
  EXPECT_TRUE(id->read && id->write && id->read_ex && id->write_ex);
}

TEST(TlsIdentify, BoringSslFromAndroidPackage) {
  const char* path = "/usr/lib/x86_64-linux-gnu/android/libssl.so.0";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not installed";
  auto id = identify_tls_library(path);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->kind, "boringssl");
  EXPECT_TRUE(id->read && id->write);
}

TEST(TlsIdentify, GnuTls) {
  auto id = identify_tls_library("/usr/lib/x86_64-linux-gnu/libgnutls.so.30");
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->kind, "gnutls");
  for (const char* f : {"gnutls_record_send", "gnutls_record_send2", "gnutls_record_recv", "gnutls_record_recv_seq"})
    EXPECT_TRUE(id->offsets.count(f)) << f;
  EXPECT_FALSE(id->read || id->write);  // not an SSL_* library
}

TEST(TlsIdentify, FilesWithoutTlsAndNonElfFiles) {
  auto libc = identify_tls_library("/usr/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_TRUE(libc) << libc.error().message;
  EXPECT_TRUE(libc->kind.empty());
  auto text = identify_tls_library("/etc/hostname");
  EXPECT_FALSE(text);
  auto missing = identify_tls_library("/nonexistent/libssl.so.3");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/libssl.so.3"), std::string::npos);
}

}  // namespace
}  // namespace vigil

// A uprobe takes a file offset: the bytes there are the function's code as loaded.
extern "C" __attribute__((noinline, used)) int vigil_uprobe_offset_target(int x) { return x * 7 + 3; }

namespace vigil {
namespace {

TEST(ElfFunctionOffset, PointsAtTheFunctionsCodeInTheFile) {
  auto off = elf_function_offset("/proc/self/exe", "vigil_uprobe_offset_target");
  ASSERT_TRUE(off) << off.error().message;
  auto bytes = read_range("/proc/self/exe", *off, 16);
  ASSERT_TRUE(bytes);
  ASSERT_EQ(bytes->size(), 16u);
  EXPECT_EQ(std::memcmp(bytes->data(), reinterpret_cast<const void*>(&vigil_uprobe_offset_target), 16), 0);
  EXPECT_FALSE(elf_function_offset("/proc/self/exe", "no_such_function_here"));
  auto not_elf = elf_function_offset("/etc/hostname", "main");
  ASSERT_FALSE(not_elf);
  EXPECT_NE(not_elf.error().message.find("not an ELF file"), std::string::npos);
}

TEST(Capabilities, EachMissingOneIsNamedWithWhatItDisables) {
  uint64_t minimal = 0;
  for (int c : {caps::kBpf, caps::kPerfmon, caps::kNetAdmin, caps::kSysPtrace, caps::kDacReadSearch})
    minimal |= uint64_t{1} << c;
  EXPECT_TRUE(caps::missing(minimal).empty());
  EXPECT_TRUE(caps::has_bpf_perfmon(minimal));
  auto m = caps::missing(minimal & ~(uint64_t{1} << caps::kNetAdmin));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(m[0].starts_with("CAP_NET_ADMIN is missing: egress policies are not enforced")) << m[0];
  // CAP_SYS_ADMIN stands in for BPF, PERFMON and NET_ADMIN, not for PTRACE or DAC_READ_SEARCH.
  uint64_t admin = uint64_t{1} << caps::kSysAdmin;
  EXPECT_TRUE(caps::has_bpf_perfmon(admin));
  EXPECT_TRUE(caps::has_net_admin(admin));
  EXPECT_EQ(caps::missing(admin).size(), 2u);
  EXPECT_FALSE(caps::has_bpf_perfmon(uint64_t{1} << caps::kBpf));
  EXPECT_EQ(caps::missing(0).size(), caps::needs().size());
  EXPECT_NE(caps::effective(), uint64_t{0} - 1);  // parsed from /proc/self/status, not all ones
}

}  // namespace
}  // namespace vigil
