// The cost of delivery guarantees (issue 11): events/s through a file sink with
// the hash chain on and off, and through a network sink's spool (append, read
// back, ack) with a receiver that acks at once, on api_call-sized lines (~900 B).
// Each runs the sink's thread as vigild does: the benchmark thread offers, the
// sink thread writes; a round ends when everything offered was delivered.
#include <benchmark/benchmark.h>

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "agent/sinks/outputs.h"
#include "agent/sinks/sinks.h"
#include "agent/sinks/spool.h"
#include "agent/sinks/worker.h"

namespace {

using namespace vigil::sinks;

std::string dir() {
  static std::string d = [] {
    char t[] = "/tmp/vigil-sinks-bench-XXXXXX";  // tmpfs or disk: both sides the same
    return std::string(mkdtemp(t));
  }();
  return d;
}

Record event(uint64_t seq) {
  Record r;
  r.seq = seq;
  r.time_ns = 1'764'576'000'000'000'000ull + seq;
  r.kind = 1;
  r.shed = kShedTelemetry;
  r.line = "{\"v\":1,\"time\":\"2026-12-02T04:00:00.000000000Z\",\"node\":\"bench\",\"kind\":\"api_call\",\"seq\":" +
           std::to_string(seq) + ",\"boot_id\":\"5c1b0f56-1d7a-4c41-9f0e-2b7f8e7f3a10\",\"process\":{\"pid\":4242,"
           "\"tid\":4242,\"ppid\":1,\"uid\":33,\"comm\":\"nginx\",\"exe\":\"/usr/sbin/nginx\",\"cgroup\":\"/system.slice/"
           "nginx.service\"},\"conn\":{\"id\":\"c-17\",\"proto\":\"tcp\",\"family\":\"ipv4\",\"role\":\"server\",\"local\":"
           "{\"addr\":\"127.0.0.1\",\"port\":8080},\"remote\":{\"addr\":\"127.0.0.1\",\"port\":53122}},\"role\":\"server\","
           "\"tls\":false,\"protocol\":\"http/1.1\",\"request\":{\"method\":\"GET\",\"host\":\"127.0.0.1:8080\",\"path\":"
           "\"/api/v1/users/42\",\"headers\":{\"user-agent\":\"wrk\",\"accept\":\"*/*\",\"authorization\":\"[redacted]\"}},"
           "\"response\":{\"status\":200,\"headers\":{\"content-type\":\"application/json\",\"content-length\":\"17\"}},"
           "\"endpoint\":\"/api/v1/users/{userId}\",\"latency_ns\":183211,\"req_bytes\":96,\"resp_bytes\":230,"
           "\"truncated\":false,\"sensitive\":[]}";
  return r;
}

void through(benchmark::State& state, std::unique_ptr<Output> out, std::unique_ptr<Spool> spool) {
  WorkerOptions o;
  o.name = "bench";
  o.queue_max_bytes = 256u << 20;
  Worker w(o, std::move(out), std::move(spool));
  constexpr int kBatch = 10000;
  std::vector<Record> events;
  for (int i = 0; i < kBatch; ++i) events.push_back(event(static_cast<uint64_t>(i)));
  std::vector<Record> batch;
  uint64_t n = 0;
  auto cpu_us = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);  // both threads: the one offering and the sink's
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
  };
  double cpu0 = cpu_us();
  for (auto _ : state) {
    // As vigild's poll loop hands them over: batches of SinkSet::kFlushRecords.
    for (size_t i = 0; i < events.size(); i += SinkSet::kFlushRecords) {
      batch.assign(events.begin() + static_cast<long>(i),
                   events.begin() + static_cast<long>(std::min(events.size(), i + SinkSet::kFlushRecords)));
      w.offer(std::span<Record>(batch));
    }
    if (!w.drain(60'000'000'000ull)) state.SkipWithError("the sink did not drain");
    n += kBatch;
  }
  state.SetItemsProcessed(static_cast<int64_t>(n));
  state.counters["cpu_ms_per_10k"] = (cpu_us() - cpu0) / 1e3 / (static_cast<double>(n) / 1e4);
  auto st = w.stats();
  state.counters["dropped"] = static_cast<double>(st.dropped_total());
}

std::unique_ptr<Output> file(bool chain) {
  std::string path = dir() + (chain ? "/chained.jsonl" : "/plain.jsonl");
  FileOptions f;
  f.path = path;
  f.max_bytes = 64ull << 20;
  f.max_files = 2;
  f.chain = chain;
  f.node = "bench";
  f.boot_id = "bench";
  auto o = FileOutput::open(f);
  if (!o) std::abort();
  return std::move(*o);
}

// A receiver that acks everything at once (the spool's own cost, not a network's).
class Acker final : public Output {
 public:
  std::string describe() const override { return "acker"; }
  Delivery deliver(std::span<const Record> batch) override {
    Delivery d;
    d.delivered = batch.size();
    return d;
  }
};

void BM_FileSinkPlain(benchmark::State& s) { through(s, file(false), nullptr); }
void BM_FileSinkChained(benchmark::State& s) { through(s, file(true), nullptr); }
void BM_AckerNoSpool(benchmark::State& s) { through(s, std::make_unique<Acker>(), nullptr); }
void BM_AckerThroughSpool(benchmark::State& s) {
  std::filesystem::remove_all(dir() + "/spool");
  auto sp = Spool::open(dir() + "/spool", {});
  if (!sp) std::abort();
  through(s, std::make_unique<Acker>(), std::move(*sp));
}
BENCHMARK(BM_FileSinkPlain)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FileSinkChained)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AckerNoSpool)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AckerThroughSpool)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::filesystem::remove_all(dir());
  return 0;
}
