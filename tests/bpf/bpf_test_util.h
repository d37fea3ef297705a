// Shared by the kernel-tier tests: skip-or-fail policy and child processes.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

extern char** environ;

namespace vigil::testing_util {

// VIGIL_REQUIRE_BPF=1 (CI): a kernel test that cannot run is a failure.
inline bool bpf_required() {
  const char* v = std::getenv("VIGIL_REQUIRE_BPF");
  return v && std::string(v) == "1";
}

#define SKIP_OR_FAIL(why)                                                                         \
  do {                                                                                            \
    if (::vigil::testing_util::bpf_required())                                                    \
      FAIL() << why << " (VIGIL_REQUIRE_BPF=1: this is a failure)";                               \
    GTEST_SKIP() << why;                                                                          \
  } while (0)

// Starts argv[0] (a path) with stdout on /dev/null; -1 on failure.
inline pid_t spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// The exit code of `pid`, or -1 when it did not exit normally.
inline int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace vigil::testing_util
