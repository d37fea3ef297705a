// connect(2) latency on loopback, for the egress-enforcement bench: N
// connects to 127.0.0.1:PORT, either refused (nothing listens) or accepted
// (a listener thread accepts and closes). Prints the median and mean ns of the
// connect call alone (socket/close excluded).
//   connect_latency refused|accepted N
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s refused|accepted N\n", argv[0]);
    return 2;
  }
  bool accepted = std::strcmp(argv[1], "accepted") == 0;
  long n = std::atol(argv[2]);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t len = sizeof(a);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), len) != 0) return 1;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  std::atomic<bool> done{false};
  std::thread server;
  if (accepted) {
    if (listen(lfd, 4096) != 0) return 1;
    server = std::thread([&] {
      while (!done.load()) {
        int c = accept(lfd, nullptr, nullptr);
        if (c >= 0) close(c);
      }
    });
  } else {
    close(lfd);  // the port is now closed: every connect is refused
  }
  std::vector<long> ns;
  ns.reserve(n);
  long failures = 0;
  for (long i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    auto t0 = std::chrono::steady_clock::now();
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    auto t1 = std::chrono::steady_clock::now();
    if ((rc == 0) != accepted) ++failures;
    close(fd);
    ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  if (accepted) {
    done.store(true);
    int wake = socket(AF_INET, SOCK_STREAM, 0);  // unblock accept()
    connect(wake, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    close(wake);
    server.join();
    close(lfd);
  }
  std::sort(ns.begin(), ns.end());
  double mean = std::accumulate(ns.begin(), ns.end(), 0.0) / static_cast<double>(ns.size());
  std::printf("%ld %.0f %ld\n", ns[ns.size() / 2], mean, failures);
  return failures ? 3 : 0;
}
