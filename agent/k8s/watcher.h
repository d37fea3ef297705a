// Keeps PodCache equal to the API server's pods of this node: a paged list
// (fieldSelector=spec.nodeName), then a watch from the list's resourceVersion
// (bookmarks on), a relist when the server says 410 Gone, reconnects with backoff.
// Runs on its own thread: a slow or dead API server never blocks the event path,
// whose lookups see the last state the cache had.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/k8s/pods.h"
#include "agent/sinks/http_client.h"
#include "base/result.h"

namespace vigil::k8s {

struct WatcherOptions {
  std::string api_server;  // https://host:port (http:// for a test server without TLS)
  std::string token_file;  // the bearer token, re-read at every connect (bound tokens rotate)
  std::string ca_file;     // the API server's CA (PEM)
  std::string node;        // spec.nodeName of this node's pods
  uint64_t timeout_ns = 10'000'000'000;  // connect, and the longest silence before the stop flag is checked
  uint32_t watch_timeout_s = 240;        // the server ends each watch after this; the next resumes
  uint32_t page_size = 500;
  uint64_t max_backoff_ns = 30'000'000'000;
};

// The in-cluster API server address from KUBERNETES_SERVICE_HOST/PORT, or "" when unset.
std::string in_cluster_api_server();

// The query string value, percent-encoded (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view s);

class PodWatcher {
 public:
  // Checks the files and the URL, then starts the thread; the first list runs there.
  static Result<std::unique_ptr<PodWatcher>> start(WatcherOptions o, PodCache& cache);
  ~PodWatcher();
  void stop();
  nlohmann::json status() const;
  bool synced() const { return lists_ok_.load() > 0; }

 private:
  PodWatcher(WatcherOptions o, PodCache& cache) : o_(std::move(o)), cache_(cache) {}
  void run();
  Status list();
  Status watch();  // OK when the server ended the watch; code 410: Gone, relist
  Result<std::string> token() const;
  sinks::HttpClientOptions client_options(const std::string& token) const;
  void note_error(const std::string& what);
  bool sleep_for(uint64_t ns);  // false when stopping

  WatcherOptions o_;
  PodCache& cache_;
  sinks::Url url_;                          // o_.api_server, parsed at start
  std::shared_ptr<sinks::TlsContext> tls_;  // the API server's CA (https)
  std::string selector_;       // fieldSelector=spec.nodeName%3D<node>
  std::string rv_;             // the resourceVersion to watch from
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  mutable std::mutex status_mu_;
  std::string last_error_;
  std::atomic<uint64_t> lists_ok_{0}, relists_gone_{0}, watches_{0}, events_{0}, errors_{0};
  std::atomic<bool> watching_{false};
};

}  // namespace vigil::k8s
