// One outbound attempt for the egress-enforcement tests; the exit code says
// what the kernel decided:
//   vigil_egress_probe tcp|udp-connect|udp-sendto ADDR PORT [--uid N] [--cgroup DIR]
//   0  connected (or sent)      3  EPERM: refused by policy
//   4  ECONNREFUSED: allowed, nobody listening     1  anything else
// --cgroup moves the probe into DIR (a cgroup v2 directory) first; --uid drops to N.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {
int verdict(int err) {
  std::printf("%s\n", err ? std::strerror(err) : "ok");
  if (err == 0) return 0;
  if (err == EPERM) return 3;
  if (err == ECONNREFUSED) return 4;
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s tcp|udp-connect|udp-sendto ADDR PORT [--uid N] [--cgroup DIR]\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  for (int i = 4; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--cgroup")) {
      std::string procs = std::string(argv[i + 1]) + "/cgroup.procs";
      FILE* f = std::fopen(procs.c_str(), "w");
      if (!f || std::fprintf(f, "%d\n", getpid()) < 0 || std::fclose(f) != 0) {
        std::perror(procs.c_str());
        return 2;
      }
    } else if (!std::strcmp(argv[i], "--uid")) {
      if (setresuid(std::atoi(argv[i + 1]), std::atoi(argv[i + 1]), std::atoi(argv[i + 1])) != 0) {
        std::perror("setresuid");
        return 2;
      }
    }
  }
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  int port = std::atoi(argv[3]);
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
  int fd = socket(family, mode == "tcp" ? SOCK_STREAM : SOCK_DGRAM, 0);
  if (fd < 0) return verdict(errno);
  int rc;
  if (mode == "udp-sendto") rc = static_cast<int>(sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&ss), len));
  else rc = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  int err = rc < 0 ? errno : 0;
  close(fd);
  return verdict(err);
}
