// Connection churn workload: N loopback TCP connections, each connected,
// accepted, one byte exchanged, closed on both sides. Prints ns per connection.
//   connect_loop N [PORT]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 10000;
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t len = sizeof(a);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), len) || listen(lfd, 128)) return 1;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);

  std::thread server([&] {
    for (long i = 0; i < n; ++i) {
      int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      char b;
      if (read(c, &b, 1) == 1) (void)!write(c, &b, 1);
      close(c);
    }
  });
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    // RST on close: no TIME_WAIT pile-up exhausting ephemeral ports across runs.
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 1;
    char b = 'x';
    (void)!write(fd, &b, 1);
    (void)!read(fd, &b, 1);
    close(fd);
  }
  auto t1 = std::chrono::steady_clock::now();
  server.join();
  std::printf("%.1f\n", std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
  return 0;
}
