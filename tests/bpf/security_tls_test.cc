// Security review F1, F5, F15 (../shared/SECURITY-REVIEW.md) on the real uprobe
// path: what other users' files and /proc entries can make the TLS manager do.
// /proc is a fake tree (maps lines name the inodes); the files are real.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/log.h"
#include "collectors/kernel/observer.h"
#include "collectors/kernel/system.h"
#include "collectors/tls/tls_manager.h"
#include "tests/bpf/bpf_test_util.h"
#include "tests/common/elf_builder.h"

namespace vigil {
namespace {
namespace fs = std::filesystem;

constexpr const char* kLibssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

class SecurityTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) SKIP_OR_FAIL("not root: the kernel tier needs root to load BPF programs");
    route_libbpf_logs(false);
    if (auto s = ensure_kernel_mounts(); !s) SKIP_OR_FAIL(s.error().message);
    static auto shared = Observer::create(  // loading takes seconds: one for the suite
        ObserverOptions{.ringbuf_bytes = 1u << 20, .self_pid = 0, .capture_bytes = 16}, [](const KernelEvent&) {});
    ASSERT_TRUE(shared) << shared.error().message;
    obs_ = shared->get();
    tmp_ = fs::temp_directory_path() / fmt::format("vigil-sec-tls-{}", getpid());
    fs::remove_all(tmp_);
    fs::create_directories(tmp_ / "lib");
    fs::create_directories(tmp_ / "proc");
  }
  void TearDown() override { fs::remove_all(tmp_); }

  static std::string maps_line(const fs::path& file, const struct stat& st) {
    return fmt::format("7f0000000000-7f0000100000 r-xp 00000000 {:02x}:{:02x} {} {}\n", major(st.st_dev),
                       minor(st.st_dev), st.st_ino, file.string());
  }
  // A process of the fake /proc whose maps list `lines`; its root is "/".
  void fake_pid(int pid, const std::string& lines) {
    fs::path d = tmp_ / "proc" / std::to_string(pid);
    fs::create_directories(d);
    fs::create_symlink("/bin/sh", d / "exe");
    fs::create_directory_symlink("/", d / "root");
    std::ofstream(d / "maps") << lines;
  }
  static struct stat stat_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(stat(p.c_str(), &st), 0) << p;
    return st;
  }
  static TlsLibraryStatus entry(const TlsManager& m, const std::string& path) {
    for (const auto& l : m.status())
      if (l.path == path) return l;
    return TlsLibraryStatus{};
  }

  Observer* obs_ = nullptr;
  fs::path tmp_;
};

// F1: the maps line names inode A; by the time it is opened, the path holds
// another file. Nothing is probed in that file, and A is not written off.
TEST_F(SecurityTls, SecurityF1SwappedPathIsNeitherProbedNorRejected) {
  fs::path lib = tmp_ / "lib" / "libssl.so.3";
  fs::copy_file(kLibssl, lib);
  struct stat a = stat_of(lib);
  fs::rename(lib, tmp_ / "lib" / "real");
  for (const char* other : {kLibssl, "/usr/lib/x86_64-linux-gnu/libc.so.6"}) {
    // B: a TLS library (probes at the attacker's offsets in another file), or a
    // non-TLS file (which would have marked A "not TLS" for good).
    fs::remove(lib);
    fs::copy_file(other, lib);
    fs::remove_all(tmp_ / "proc");
    fake_pid(7001, maps_line(lib, a));
    TlsManager m(*obs_, (tmp_ / "proc").string());
    m.scan_all();
    TlsLibraryStatus l = entry(m, lib.string());
    EXPECT_TRUE(l.probes.empty()) << other << ": probed a file the process does not map";
    EXPECT_NE(l.error.find("is not the file the process maps"), std::string::npos) << other << ": " << l.error;
    // The path names A again: A is probed at the next look.
    fs::remove(lib);
    fs::create_hard_link(tmp_ / "lib" / "real", lib);
    m.scan_all();
    l = entry(m, lib.string());
    EXPECT_FALSE(l.probes.empty()) << other << ": " << l.error;
    EXPECT_EQ(l.kind, "openssl-3");
  }
}

// F5: a crafted "Go" executable of thousands of RETs gets no probe, and one
// user's files cannot take more than their quota of probes; at the quota, the
// owner's files no process maps any more make room.
TEST_F(SecurityTls, SecurityF5ProbesAreCappedPerExecutableAndPerOwner) {
  fs::path go = tmp_ / "lib" / "libssl-go";
  std::ofstream(go, std::ios::binary) << testing::go_tls_elf(std::string(4096, '\xc3'));
  TlsLimits limits{.max_per_owner = 4};
  auto user_libs = [&](const std::string& tag, size_t n) {
    std::string lines;
    for (size_t i = 0; i < n; ++i) {
      fs::path p = tmp_ / "lib" / fmt::format("libssl.so.{}{}", tag, i);
      fs::copy_file(kLibssl, p);
      EXPECT_EQ(chown(p.c_str(), 65534, 65534), 0);
      lines += maps_line(p, stat_of(p));
    }
    return lines;
  };
  fake_pid(7002, maps_line(go, stat_of(go)) + user_libs("a", limits.max_per_owner + 3));
  TlsManager m(*obs_, (tmp_ / "proc").string(), limits);
  uint64_t t = 0;
  auto full_walks = [&](int n) {  // 5 s apart, each tick with a fresh attach budget
    for (int i = 0; i < n; ++i) m.tick(t += 6'000'000'000ull);
  };
  auto count = [&](const std::string& tag, size_t* attached, size_t* over) {
    *attached = *over = 0;
    for (const auto& l : m.status()) {
      if (l.path.find("libssl.so." + tag) == std::string::npos) continue;
      if (!l.probes.empty()) ++*attached;
      if (l.error.find("owner uid 65534") != std::string::npos) ++*over;
    }
  };
  full_walks(2);
  TlsLibraryStatus g = entry(m, go.string());
  EXPECT_TRUE(g.probes.empty());
  EXPECT_NE(g.error.find("RET instructions"), std::string::npos) << g.error;
  size_t attached = 0, over = 0;
  count("a", &attached, &over);
  EXPECT_EQ(attached, limits.max_per_owner);
  EXPECT_EQ(over, 3u);
  // The process goes; another maps two new files of the same owner: the unused ones give way.
  fs::remove_all(tmp_ / "proc" / "7002");
  fake_pid(7003, user_libs("b", 2));
  full_walks(2);
  count("b", &attached, &over);
  EXPECT_EQ(attached, 2u);
  EXPECT_EQ(over, 0u);
  count("a", &attached, &over);
  EXPECT_EQ(attached, limits.max_per_owner - 2);
}

// F15: every distinct non-TLS executable met used to stay in memory for good.
TEST_F(SecurityTls, SecurityF15RejectedFilesAreBounded) {
  std::string tiny = testing::build_elf({{".text", SHT_PROGBITS, 0x401000, std::string(16, '\x90')}});
  TlsLimits limits{.max_rejected = 100};
  std::string lines;
  const size_t n = limits.max_rejected + 50;
  for (size_t i = 0; i < n; ++i) {
    fs::path p = tmp_ / "lib" / fmt::format("libssl-not.{}", i);
    std::ofstream(p, std::ios::binary) << tiny;
    lines += maps_line(p, stat_of(p));
  }
  fake_pid(7004, lines);
  TlsManager m(*obs_, (tmp_ / "proc").string(), limits);
  m.scan_all();
  EXPECT_EQ(m.counters().rejected, n);
  EXPECT_EQ(m.counters().remembered_rejected, limits.max_rejected);
}

}  // namespace
}  // namespace vigil
