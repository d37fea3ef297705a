// What hooking syscalls costs a process that makes them: ns per call of one
// syscall no program looks at (getppid) and of one the payload programs look at
// on a descriptor that is not a tracked socket (a 1-byte read of /dev/zero).
// Prints "GETPPID_NS READ_NS".
//   syscall_loop [CALLS]
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

template <class F>
double ns_per_call(long n, F f) {
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) f();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 1000000;
  int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (zero < 0) return 1;
  char b;
  double g = ns_per_call(n, [] { syscall(SYS_getppid); });
  double r = ns_per_call(n, [&] {
    if (read(zero, &b, 1) != 1) std::abort();
  });
  std::printf("%.1f %.1f\n", g, r);
}
