// TLS library identification from ELF symbols, on the libraries Debian ships
// (OpenSSL 3 is always there; BoringSSL comes with android-libboringssl-dev).
#include <gtest/gtest.h>

#include <filesystem>

#include "collectors/tls/tls_manager.h"

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
