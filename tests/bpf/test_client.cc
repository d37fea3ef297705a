// A small network client for the kernel tests: connects (TCP or connected UDP),
// sends N bytes, reads the answer, closes (or exits with the socket open).
//   vigil_test_client tcp|udp ADDR PORT [--send N] [--no-close] [--count N]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s tcp|udp ADDR PORT [--send N] [--no-close]\n", argv[0]);
    return 2;
  }
  bool tcp = std::strcmp(argv[1], "tcp") == 0;
  int port = std::atoi(argv[3]);
  size_t to_send = 100;
  bool do_close = true;
  int count = 1;
  for (int i = 4; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--send") && i + 1 < argc) to_send = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--no-close")) do_close = false;
    else if (!std::strcmp(argv[i], "--count") && i + 1 < argc) count = std::atoi(argv[++i]);
  }
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (std::strchr(argv[2], ':')) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = family = AF_INET6;
    a6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, argv[2], &a6->sin6_addr) != 1) return 2;
    len = sizeof(*a6);
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    a4->sin_family = family = AF_INET;
    a4->sin_port = htons(port);
    if (inet_pton(AF_INET, argv[2], &a4->sin_addr) != 1) return 2;
    len = sizeof(*a4);
  }
  for (int c = 0; c < count; ++c) {
  int fd = socket(family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    std::perror("connect");
    return 1;
  }
  std::string payload(to_send, 'x');
  if (send(fd, payload.data(), payload.size(), 0) != static_cast<ssize_t>(payload.size())) {
    std::perror("send");
    return 1;
  }
  size_t received = 0;
  if (tcp) {
    shutdown(fd, SHUT_WR);
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) received += n;
  }
  std::printf("%zu\n", received);
  if (do_close) close(fd);
  }
  return 0;
}
