// Bulk-transfer workload for the protocol-inference question: one loopback TCP
// connection carrying N MiB of binary (non-HTTP) data in 16 KiB writes.
// Prints MiB/s. Every write and read is a payload-hook hit on a tracked socket.
//   stream_loop MIB
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  long mib = argc > 1 ? std::atol(argv[1]) : 512;
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t len = sizeof(a);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), len) || listen(lfd, 1)) return 1;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread server([&] {
    int c = accept(lfd, nullptr, nullptr);
    std::vector<char> buf(16384);
    while (read(c, buf.data(), buf.size()) > 0) {
    }
    close(c);
  });
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 1;
  std::vector<char> chunk(16384);
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 131 + 7);  // binary
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < mib * 64; ++i) {
    if (write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) return 1;
  }
  close(fd);
  server.join();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.1f\n", mib / s);
  return 0;
}
