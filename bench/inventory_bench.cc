// The inventory's per-call cost (issue 10): template + stats + auth + classify on
// a corpus shaped like recorded traffic (curl/python clients, nginx/python
// servers), header-only and with 4 KiB JSON bodies, the body scan with
// Hyperscan against the std::regex baseline side by side. `--rss` instead feeds
// 1,000,000 calls over 10,000 endpoints and reports the inventory's memory.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "agent/apimap/inventory.h"

namespace {

using namespace vigil;
using namespace vigil::apimap;

struct Recorded {
  protocols::Exchange x;
  std::string method, host, path, query;
  int status = 200;
  std::string role = "server";
};

std::string json_body(std::mt19937& rng, size_t size) {
  std::string b = "{\"items\":[";
  int i = 0;
  while (b.size() + 120 < size) {
    if (i) b += ',';
    b += "{\"id\":" + std::to_string(rng() % 100000) + ",\"name\":\"item-" + std::to_string(i) +
         "\",\"price\":" + std::to_string(rng() % 1000) + ".5,\"tags\":[\"a\",\"b\"],\"owner\":\"user" +
         std::to_string(rng() % 100) + "@example.com\"}";
    ++i;
  }
  b += "],\"total\":" + std::to_string(i) + "}";
  return b;
}

// A corpus with the shapes the e2e traffic has: ids, uuids, dates, words, `me`.
std::vector<Recorded> corpus(size_t n, size_t body, unsigned seed = 1) {
  std::mt19937 rng(seed);
  static const char* kRes[] = {"users", "orders", "items", "accounts", "invoices", "reports", "files", "carts"};
  std::vector<Recorded> out(n);
  char uuid[40];
  for (size_t i = 0; i < n; ++i) {
    Recorded& r = out[i];
    const char* res = kRes[rng() % 8];
    switch (rng() % 5) {
      case 0: r.path = fmt::format("/api/v1/{}/{}", res, rng() % 100000); break;
      case 1:
        snprintf(uuid, sizeof uuid, "%08x-%04x-4%03x-8%03x-%012llx", static_cast<unsigned>(rng()),
                 static_cast<unsigned>(rng() & 0xffff), static_cast<unsigned>(rng() & 0xfff),
                 static_cast<unsigned>(rng() & 0xfff), static_cast<unsigned long long>(rng()) << 16);
        r.path = fmt::format("/api/v1/{}/{}/history", res, uuid);
        break;
      case 2: r.path = fmt::format("/api/v2/{}/2024-0{}-1{}", res, 1 + rng() % 9, rng() % 10); break;
      case 3: r.path = fmt::format("/api/v1/{}/me", res); break;
      default: r.path = fmt::format("/api/v1/{}", res); break;
    }
    r.method = rng() % 4 == 0 ? "POST" : "GET";
    r.host = "api.internal:8080";
    if (rng() % 3 == 0) r.query = "page=2&limit=50";
    r.role = rng() % 2 ? "server" : "client";
    r.x.request.method = r.method;
    r.x.request.target = r.path + (r.query.empty() ? "" : "?" + r.query);
    r.x.request.headers = {{"host", r.host}, {"user-agent", "curl/7.88.1"}, {"accept", "*/*"}};
    if (rng() % 2) r.x.request.headers.push_back({"authorization", "Bearer opaque-token-abcdef0123456789"});
    r.x.response.status = 200;
    r.x.response.headers = {{"server", "nginx/1.22.1"}, {"date", "Tue, 01 Dec 2026 10:00:00 GMT"},
                            {"content-type", "application/json"}, {"content-length", "17"}};
    if (body) r.x.response.body = json_body(rng, body);
    else r.x.response.body.clear();
  }
  return out;
}

InventoryOptions bench_options(size_t max_endpoints = 0) {
  InventoryOptions o;
  o.node = "bench";
  if (max_endpoints) o.max_endpoints = max_endpoints;
  return o;
}

ProcessRef proc() { return {1, 1, 1, 0, "nginx", "/usr/sbin/nginx", "/system.slice/nginx.service", "", ""}; }

CallInput input(const Recorded& r, const ProcessRef& p, uint64_t now) {
  CallInput in;
  in.exchange = &r.x;
  in.process = &p;
  in.role = r.role;
  in.protocol = "http/1.1";
  in.method = r.method;
  in.host = r.host;
  in.path = r.path;
  in.query = r.query;
  in.status = r.status;
  in.latency_ns = 250000 + (now % 1000) * 1000;
  in.remote_addr = "10.0.0.7";
  in.remote_port = 8080;
  in.wall_ns = now;
  return in;
}

// A scanner that shares one compiled pattern database (compiled once, not per
// benchmark: the compile would dominate a profile of the per-call work).
class SharedScanner final : public SensitiveScanner {
 public:
  explicit SharedScanner(SensitiveScanner* s) : s_(s) {}
  uint16_t scan(std::string_view data) override { return s_->scan(data); }
  void scan_parts(std::string_view data, const std::array<size_t, 2>& cuts, std::array<uint16_t, 3>& found) override {
    s_->scan_parts(data, cuts, found);
  }

 private:
  SensitiveScanner* s_;
};

std::unique_ptr<SensitiveScanner> scanner(bool hyperscan) {
  static std::unique_ptr<SensitiveScanner> hs, re;
  auto& slot = hyperscan ? hs : re;
  if (!slot) {
    if (hyperscan) {
      auto s = make_hyperscan_scanner();
      if (!s) std::abort();
      slot = std::move(*s);
    } else {
      slot = make_regex_scanner();
    }
  }
  return std::make_unique<SharedScanner>(slot.get());
}

// The digits a call's path ends with ("/users/48213"), to write a new id into.
struct IdSpan {
  size_t at = 0, len = 0;
};
IdSpan id_span(const std::string& path) {
  size_t end = path.size(), at = end;
  while (at > 0 && path[at - 1] >= '0' && path[at - 1] <= '9') --at;
  return {at, end - at};
}
void write_id(std::string& s, IdSpan span, uint64_t v) {
  for (size_t k = span.len; k-- > 0; v /= 10) s[span.at + k] = static_cast<char>('0' + v % 10);
}

// `fresh_ids`: each replay of a call writes a new id into its path (a long run of
// distinct users, orders): no path repeats, the template memo cannot help.
void run_inventory(benchmark::State& state, size_t body, bool hyperscan, size_t n = 4096, bool fresh_ids = false) {
  auto calls = corpus(n, body);
  std::vector<IdSpan> spans;
  for (auto& c : calls) spans.push_back(id_span(c.path));
  Inventory inv(bench_options(), scanner(hyperscan));
  ProcessRef p = proc();
  uint64_t now = 1'700'000'000'000'000'000ull;
  Inventory::Emit emit = [](Event&&) {};
  size_t i = 0;
  for (auto _ : state) {
    size_t k = i++ % n;
    Recorded& r = calls[k];
    if (fresh_ids && spans[k].len >= 4) write_id(r.path, spans[k], i / n);
    benchmark::DoNotOptimize(inv.observe(input(r, p, now += 1000), emit));
    if ((i & 65535) == 0) inv.tick(now, emit);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["endpoints"] = static_cast<double>(inv.endpoints() + inv.pending());
}

// Header-only calls over 256 recorded calls: the exchange is in cache, as it is in
// vigild right after the parser produced it. FreshIds: ids never repeat. Cold: 4096
// recorded calls cycled, each one's headers and strings out of cache by its turn.
void BM_InventoryHeaderOnly(benchmark::State& s) { run_inventory(s, 0, true, 256); }
void BM_InventoryHeaderOnlyFreshIds(benchmark::State& s) { run_inventory(s, 0, true, 256, true); }
void BM_InventoryHeaderOnlyCold(benchmark::State& s) { run_inventory(s, 0, true, 4096); }
void BM_InventoryJson4KHyperscan(benchmark::State& s) { run_inventory(s, 4096, true); }
void BM_InventoryJson4KRegex(benchmark::State& s) { run_inventory(s, 4096, false); }
BENCHMARK(BM_InventoryHeaderOnly);
BENCHMARK(BM_InventoryHeaderOnlyFreshIds);
BENCHMARK(BM_InventoryHeaderOnlyCold);
BENCHMARK(BM_InventoryJson4KHyperscan);
BENCHMARK(BM_InventoryJson4KRegex);

void scan_only(benchmark::State& state, bool hyperscan) {
  auto calls = corpus(64, 4096);
  auto s = scanner(hyperscan);
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& b = calls[i++ & 63].x.response.body;
    benchmark::DoNotOptimize(s->scan(b));
    bytes += b.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}
void BM_Scan4KHyperscan(benchmark::State& s) { scan_only(s, true); }
void BM_Scan4KRegex(benchmark::State& s) { scan_only(s, false); }
BENCHMARK(BM_Scan4KHyperscan);
BENCHMARK(BM_Scan4KRegex);

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

// 1,000,000 calls over 10,000 endpoints (50 services x 8 x 5 x 5 routes of plain
// words, ids varying), one in eight with a 1 KiB JSON body: the inventory's
// memory when full.
int rss_mode() {
  long base = rss_kib();
  Inventory inv(bench_options(10000), scanner(true));
  ProcessRef p = proc();
  std::mt19937 rng(3);
  auto bodies = corpus(16, 1024);
  uint64_t now = 1'700'000'000'000'000'000ull;
  Inventory::Emit emit = [](Event&&) {};
  Recorded r;
  r.x.request.method = "GET";
  r.x.request.headers = {{"host", "api.internal"}, {"user-agent", "python-urllib/3.11"}};
  r.x.response.headers = {{"content-type", "application/json"}};
  r.method = "GET";
  r.host = "api.internal";
  for (int i = 0; i < 1'000'000; ++i) {
    static const char* kA[] = {"users", "orders", "items", "carts", "teams", "files", "alerts", "events"};
    static const char* kB[] = {"history", "settings", "members", "comments", "labels"};
    static const char* kC[] = {"latest", "summary", "details", "preview", "export"};
    unsigned route = rng() % 10000;
    r.path = fmt::format("/svc{}/{}/{}/{}/{}", route % 50, kA[route / 50 % 8], kB[route / 400 % 5],
                         kC[route / 2000 % 5], rng() % 1000000);
    r.x.request.target = r.path;
    r.x.response.body = i % 8 == 0 ? bodies[i % 16].x.response.body : std::string();
    r.role = route % 2 ? "server" : "client";
    inv.observe(input(r, p, now += 1000), emit);
    if (i % 10000 == 0) inv.tick(now, emit);
  }
  inv.tick(now, emit);
  long used = rss_kib() - base;
  std::printf("{\"endpoints\": %zu, \"pending\": %zu, \"calls\": %llu, \"evicted\": %llu, \"rss_delta_kib\": %ld, "
              "\"accounted_bytes\": %zu}\n",
              inv.endpoints(), inv.pending(), static_cast<unsigned long long>(inv.calls()),
              static_cast<unsigned long long>(inv.evicted()), used, inv.memory_bytes());
  return 0;
}

}  // namespace

// A fixed number of header-only calls (BM_InventoryHeaderOnly's), for an instruction count
// that the VM's noise does not move: `valgrind --tool=callgrind
// --toggle-collect='vigil::apimap::Inventory::observe(*' inventory_bench --calls N`.
int calls_mode(long n) {
  auto calls = corpus(256, 0);
  Inventory inv(bench_options(), scanner(true));
  ProcessRef p = proc();
  uint64_t now = 1'700'000'000'000'000'000ull;
  Inventory::Emit emit = [](Event&&) {};
  for (long i = 0; i < n; ++i) {
    inv.observe(input(calls[static_cast<size_t>(i) % calls.size()], p, now += 1000), emit);
    if ((i & 65535) == 65535) inv.tick(now, emit);
  }
  std::printf("%ld calls, %zu endpoints\n", n, inv.endpoints() + inv.pending());
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--rss") == 0) return rss_mode();
  if (argc > 2 && std::strcmp(argv[1], "--calls") == 0) return calls_mode(std::atol(argv[2]));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
