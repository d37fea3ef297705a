#include "agent/k8s/watcher.h"

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

#include "agent/sinks/http_client.h"
#include "base/file.h"
#include "base/log.h"

namespace vigil::k8s {
namespace {

constexpr size_t kMaxListBytes = 256u << 20;  // one page of pods (500 of them is a few MB)
constexpr size_t kMaxLine = 16u << 20;        // one watch event

// The message of a Status object (a non-200 answer's body), else the body's start.
std::string status_message(int status, const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string())
    return fmt::format("HTTP {}: {}", status, j["message"].get<std::string>());
  return fmt::format("HTTP {}: {}", status, body.substr(0, 200));
}

}  // namespace

std::string in_cluster_api_server() {
  const char* host = getenv("KUBERNETES_SERVICE_HOST");
  const char* port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host) return "";
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return fmt::format("https://{}:{}", h, port && *port ? port : "443");
}

std::string url_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

Result<std::unique_ptr<PodWatcher>> PodWatcher::start(WatcherOptions o, PodCache& cache) {
  if (o.node.empty()) return Error{"kubernetes: no node name (set VIGIL_NODE_NAME from spec.nodeName, or node_name)"};
  auto url = sinks::Url::parse(o.api_server);
  if (!url) return Error{fmt::format("kubernetes.api_server: {}", url.error().message)};
  std::unique_ptr<PodWatcher> w(new PodWatcher(std::move(o), cache));
  w->url_ = *url;
  if (auto t = w->token(); !t) return t.error();
  if (url->tls) {
    sinks::TlsOptions to;
    to.enabled = true;
    to.ca_file = w->o_.ca_file;
    auto tls = sinks::TlsContext::create(to);
    if (!tls) return Error{fmt::format("kubernetes.ca_file {}: {}", w->o_.ca_file, tls.error().message)};
    w->tls_ = std::move(*tls);
  }
  w->selector_ = "fieldSelector=" + url_encode("spec.nodeName=" + w->o_.node);
  w->thread_ = std::thread([p = w.get()] { p->run(); });
  return w;
}

PodWatcher::~PodWatcher() { stop(); }

void PodWatcher::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::string> PodWatcher::token() const {
  auto t = read_file(o_.token_file);
  if (!t) return Error{fmt::format("kubernetes.token_file: {}", t.error().message)};
  std::string s = trim_right(std::move(*t));
  if (s.empty()) return Error{fmt::format("kubernetes.token_file {} is empty", o_.token_file)};
  return s;
}

sinks::HttpClientOptions PodWatcher::client_options(const std::string& token) const {
  sinks::HttpClientOptions o;
  o.url = url_;
  o.tls = tls_;
  o.timeout_ns = o_.timeout_ns;
  o.read_poll_ns = 200'000'000;  // the stop flag is seen within this
  o.headers = {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}};
  return o;
}

bool PodWatcher::sleep_for(uint64_t ns) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::nanoseconds(ns), [this] { return stop_.load(); });
  return !stop_;
}

void PodWatcher::note_error(const std::string& what) {
  ++errors_;
  std::lock_guard lock(status_mu_);
  if (what != last_error_) log::warn("kubernetes: {} (pod metadata keeps its last state; retrying)", what);
  last_error_ = what;
}

void PodWatcher::run() {
  uint64_t backoff = 1'000'000'000;
  bool need_list = true;
  while (!stop_) {
    Status s;
    try {  // the thread must not end the agent: a decoder that throws is one failed round
      s = need_list ? list() : watch();
    } catch (const std::exception& e) {
      s = Error{fmt::format("kubernetes: {}", e.what())};
    }
    if (stop_) break;
    if (s) {
      need_list = false;  // listed: watch; a watch the server ended: watch again from rv_
      backoff = 1'000'000'000;
      continue;
    }
    if (s.error().code == 410) {  // the resourceVersion is too old: list again at once
      ++relists_gone_;
      log::info("kubernetes: {}; listing again", s.error().message);
      need_list = true;
      continue;
    }
    note_error(s.error().message);
    need_list = need_list || rv_.empty();
    if (!sleep_for(backoff)) break;
    backoff = std::min(backoff * 2, o_.max_backoff_ns);
  }
}

Status PodWatcher::list() {
  auto tok = token();
  if (!tok) return tok.error();
  sinks::HttpClient client(client_options(*tok));
  std::vector<Pod> pods;
  std::string cont, rv;
  size_t bad = 0;
  do {
    std::string body;
    bool too_big = false;
    std::string target = fmt::format("/api/v1/pods?{}&limit={}", selector_, o_.page_size);
    if (!cont.empty()) target += "&continue=" + url_encode(cont);
    uint64_t quiet = 0;
    auto r = client.get(
        target,
        [&](int, std::string_view chunk) {
          quiet = 0;
          if (body.size() + chunk.size() > kMaxListBytes) return !(too_big = true);
          body.append(chunk);
          return true;
        },
        [&] { return !stop_ && (quiet += 200'000'000) < o_.timeout_ns; });
    if (!r) return Error{fmt::format("list pods from {}: {}", o_.api_server, r.error().message)};
    if (too_big) return Error{fmt::format("list pods from {}: a page over {} MiB", o_.api_server, kMaxListBytes >> 20)};
    if (r->status == 410) return Error{"the list's continue token expired (410 Gone)", 410};
    if (r->status != 200) return Error{fmt::format("list pods from {}: {}", o_.api_server, status_message(r->status, body))};
    ListPage page = decode_list_page(body);
    if (!page.ok) return Error{fmt::format("list pods from {}: the answer is not a PodList", o_.api_server)};
    bad += page.bad;
    for (auto& p : page.pods) pods.push_back(std::move(p));
    cont = std::move(page.cont);
    if (!page.resource_version.empty()) rv = std::move(page.resource_version);
    // Pages past max_pods are not fetched: the cache would drop them anyway.
    if (pods.size() >= cache_.max_pods() && !cont.empty()) {
      log::warn("kubernetes: the list holds more than kubernetes.max_pods ({}) pods; the rest is not read",
                cache_.max_pods());
      break;
    }
  } while (!cont.empty() && !stop_);
  if (stop_) return Status{};
  if (bad) log::warn("kubernetes: {} pods of the list could not be read (skipped)", bad);
  size_t n = pods.size();
  cache_.replace(std::move(pods));
  rv_ = rv;
  uint64_t lists = ++lists_ok_;
  {
    std::lock_guard lock(status_mu_);
    last_error_.clear();
  }
  log::info("kubernetes: {} pods on node {} (resourceVersion {}){}", n, o_.node, rv_,
            lists == 1 ? "" : fmt::format(", list {}", lists));
  if (cache_.dropped()) log::warn("kubernetes: {} pods beyond kubernetes.max_pods are not kept", cache_.dropped());
  return Status{};
}

Status PodWatcher::watch() {
  auto tok = token();
  if (!tok) return tok.error();
  sinks::HttpClient client(client_options(*tok));
  std::string target = fmt::format("/api/v1/pods?{}&watch=1&allowWatchBookmarks=true&resourceVersion={}&timeoutSeconds={}",
                                   selector_, url_encode(rv_), o_.watch_timeout_s);
  std::string line, err_body;
  Status outcome;
  bool stopped_by_us = false;
  ++watches_;
  watching_ = true;
  auto on_line = [&](const std::string& text) -> bool {
    WatchLine w = decode_watch_line(text);
    if (w.kind == WatchLine::kInvalid) {
      outcome = Error{fmt::format("watch pods: a line that is not a watch event: {}", text.substr(0, 120))};
      return false;
    }
    if (w.kind == WatchLine::kError) {
      outcome = Error{fmt::format("watch pods: {} ({})", w.message.empty() ? "an ERROR event" : w.message, w.code),
                      w.code == 410 ? 410 : 0};
      return false;
    }
    if (!w.resource_version.empty()) rv_ = w.resource_version;
    if (w.kind == WatchLine::kBookmark || w.kind == WatchLine::kOther) return true;
    if (!w.pod) {
      log::debug("kubernetes: watch event: {}", w.pod_error);
      return true;
    }
    ++events_;
    if (w.kind == WatchLine::kDeleted) cache_.remove(w.pod->uid);
    else cache_.upsert(std::move(*w.pod));
    return true;
  };
  // The server ends a watch after timeoutSeconds (and bookmarks it meanwhile): a
  // longer silence is a dead connection.
  const uint64_t max_quiet = (uint64_t{o_.watch_timeout_s} + 30) * 1'000'000'000ull;
  uint64_t quiet = 0;
  auto r = client.get(
      target,
      [&](int status, std::string_view chunk) {
        quiet = 0;
        if (status != 200) {
          err_body.append(chunk.substr(0, 4096));
          return true;
        }
        for (char c : chunk) {
          if (c != '\n') {
            if (line.size() >= kMaxLine) {
              outcome = Error{fmt::format("watch pods: an event over {} MiB", kMaxLine >> 20)};
              return false;
            }
            line += c;
            continue;
          }
          if (!line.empty() && !on_line(line)) return false;
          line.clear();
        }
        return true;
      },
      [&] {
        if ((stopped_by_us = stop_.load())) return false;
        return (quiet += 200'000'000) < max_quiet;
      });
  watching_ = false;
  if (!outcome) return outcome;
  if (!r) {
    if (stopped_by_us) return Status{};
    return Error{fmt::format("watch pods from {}: {}", o_.api_server, r.error().message)};
  }
  if (r->status == 410) return Error{"the watch's resourceVersion is too old (410 Gone)", 410};
  if (r->status != 200) return Error{fmt::format("watch pods from {}: {}", o_.api_server, status_message(r->status, err_body))};
  return Status{};
}

nlohmann::json PodWatcher::status() const {
  nlohmann::json j{{"api_server", o_.api_server}, {"node", o_.node}, {"synced", synced()},
                   {"watching", watching_.load()}, {"pods", cache_.size()}, {"dropped", cache_.dropped()},
                   {"lists", lists_ok_.load()}, {"relists_gone", relists_gone_.load()}, {"watches", watches_.load()},
                   {"watch_events", events_.load()}, {"errors", errors_.load()}};
  std::lock_guard lock(status_mu_);
  if (!last_error_.empty()) j["last_error"] = last_error_;
  return j;
}

}  // namespace vigil::k8s
