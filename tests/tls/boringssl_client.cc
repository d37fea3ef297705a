// An HTTPS/1.1 client built against BoringSSL (Debian's android-libboringssl),
// for the TLS e2e tests: N keep-alive GETs of PATH on one connection.
//   vigil_boringssl_client PORT PATH N
// Certificates are not verified (the test server's is self-signed).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {
// Reads one response (headers + Content-Length body); false on error.
bool read_response(SSL* ssl, std::string& pending) {
  size_t head_end;
  char buf[4096];
  while ((head_end = pending.find("\r\n\r\n")) == std::string::npos) {
    int n = SSL_read(ssl, buf, sizeof(buf));
    if (n <= 0) return false;
    pending.append(buf, n);
  }
  size_t length = 0;
  size_t cl = pending.find("Content-Length: ");
  if (cl != std::string::npos && cl < head_end) length = std::strtoul(pending.c_str() + cl + 16, nullptr, 10);
  while (pending.size() < head_end + 4 + length) {
    int n = SSL_read(ssl, buf, sizeof(buf));
    if (n <= 0) return false;
    pending.append(buf, n);
  }
  pending.erase(0, head_end + 4 + length);
  return true;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s PORT PATH N\n", argv[0]);
    return 2;
  }
  int port = std::atoi(argv[1]);
  int n = std::atoi(argv[3]);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    std::perror("connect");
    return 1;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) {
    std::fprintf(stderr, "SSL_connect failed\n");
    return 1;
  }
  std::string pending;
  for (int i = 0; i < n; ++i) {
    std::string req = std::string("GET ") + argv[2] + "/" + std::to_string(i) +
                      " HTTP/1.1\r\nHost: 127.0.0.1:" + argv[1] + "\r\nUser-Agent: vigil-boringssl\r\n\r\n";
    if (SSL_write(ssl, req.data(), static_cast<int>(req.size())) != static_cast<int>(req.size()) ||
        !read_response(ssl, pending)) {
      std::fprintf(stderr, "request %d failed\n", i);
      return 1;
    }
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  close(fd);
  return 0;
}
