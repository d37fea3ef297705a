// Sinks: the spool (at least once, in order, replay, corrupt and torn records,
// shedding by class), the worker's retries, file rotation, RFC 5424 framing. What
// cannot be delivered is counted by class (lost{source:"sink_<name>"}), never lost silently.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/events/events.h"
#include "agent/sinks/outputs.h"
#include "agent/sinks/spool.h"
#include "agent/sinks/syslog.h"
#include "agent/sinks/worker.h"
#include "base/fd.h"
#include "base/file.h"

namespace vigil::sinks {
namespace {

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/vigil-sinks-XXXXXX";
    path_ = mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

FileOptions file_options(std::string path, uint64_t max_bytes, uint32_t max_files, bool chain = false) {
  FileOptions o;
  o.path = std::move(path);
  o.max_bytes = max_bytes;
  o.max_files = max_files;
  o.chain = chain;
  o.node = "node-1";
  o.boot_id = "boot-1";
  return o;
}

Record rec(uint64_t seq, uint8_t shed = kShedNormal, size_t pad = 0) {
  Record r;
  r.seq = seq;
  r.time_ns = 1'764'000'000'123'456'789ull + seq;
  r.kind = 1;
  r.shed = shed;
  r.line = fmt::format("{{\"seq\":{},\"pad\":\"{}\"}}", seq, std::string(pad, 'x'));
  return r;
}

// Takes everything from the spool in batches of `n`, acking each.
std::vector<uint64_t> drain_spool(Spool& s, size_t n = 7) {
  std::vector<uint64_t> seqs;
  while (true) {
    const auto& b = s.peek(n, 1 << 20);
    if (b.empty()) break;
    for (const auto& r : b) seqs.push_back(r.seq);
    s.ack(b.size());
  }
  return seqs;
}

std::vector<uint64_t> range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  for (uint64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

TEST(Spool, DeliversInOrderAndKeepsWhatWasNotAckedAcrossAReopen) {
  TempDir d;
  {
    auto s = Spool::open(d.path(), {});
    ASSERT_TRUE(s) << s.error().message;
    std::vector<Record> batch;
    for (uint64_t i = 1; i <= 100; ++i) batch.push_back(rec(i));
    ASSERT_TRUE((*s)->append(batch));
    EXPECT_EQ((*s)->records(), 100u);
    const auto& b = (*s)->peek(30, 1 << 20);
    ASSERT_EQ(b.size(), 30u);
    EXPECT_EQ(b.front().seq, 1u);
    EXPECT_EQ(b.front().line, rec(1).line);
    EXPECT_EQ(b.front().time_ns, rec(1).time_ns);
    (*s)->ack(30);
    EXPECT_EQ((*s)->peek(5, 1 << 20).front().seq, 31u) << "peek again after a failed delivery: the same records";
    ASSERT_TRUE((*s)->sync(0, true));
  }  // like SIGKILL after the last sync: the 70 unacked records come back
  auto s = Spool::open(d.path(), {});
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->records(), 70u);
  EXPECT_EQ(drain_spool(**s), range(31, 100));
  EXPECT_EQ((*s)->bytes(), 0u);
  EXPECT_EQ((*s)->corrupt(), 0u);
}

TEST(Spool, SkipsACorruptRecordCountsItAndCutsATornTail) {
  TempDir d;
  {
    auto s = Spool::open(d.path(), {});
    ASSERT_TRUE(s);
    std::vector<Record> batch;
    for (uint64_t i = 1; i <= 10; ++i) batch.push_back(rec(i, kShedNormal, 40));
    ASSERT_TRUE((*s)->append(batch));
  }
  std::string seg;
  for (const auto& e : std::filesystem::directory_iterator(d.path()))
    if (e.path().extension() == ".seg" && std::filesystem::file_size(e.path()) > 0) seg = e.path();
  ASSERT_FALSE(seg.empty());
  auto data = read_file(seg);
  ASSERT_TRUE(data);
  size_t rec_size = data->size() / 10;
  std::string bad = *data;
  bad[3 * rec_size + 40] ^= 0x5a;          // inside record 4's line: its checksum fails
  bad.resize(bad.size() - rec_size / 2);  // record 10 torn in half (SIGKILL mid-write)
  {
    std::ofstream f(seg, std::ios::binary | std::ios::trunc);
    f << bad;
  }
  auto s = Spool::open(d.path(), {});
  ASSERT_TRUE(s) << "a corrupt spool never stops the agent from starting";
  EXPECT_EQ((*s)->corrupt(), 2u);
  EXPECT_EQ(drain_spool(**s), (std::vector<uint64_t>{1, 2, 3, 5, 6, 7, 8, 9}));
  // Appends continue after the cut tail, readable.
  std::vector<Record> more = {rec(11)};
  ASSERT_TRUE((*s)->append(more));
  EXPECT_EQ(drain_spool(**s), (std::vector<uint64_t>{11}));
}

TEST(Spool, ShedsTelemetryFirstAndMakesRoomForKeptEvents) {
  TempDir d;
  SpoolOptions o;
  o.max_bytes = 256 << 10;  // 256 KiB, segments of 64 KiB
  auto s = Spool::open(d.path(), o);
  ASSERT_TRUE(s);
  std::vector<Record> batch;
  for (uint64_t i = 1; i <= 400; ++i) batch.push_back(rec(i, kShedTelemetry, 1000));  // ~400 KiB
  ASSERT_TRUE((*s)->append(batch));
  uint64_t refused = (*s)->shed()[kShedTelemetry];
  EXPECT_GT(refused, 100u);
  EXPECT_LE((*s)->bytes(), o.max_bytes);
  // Kept events (egress denies, findings, policy) push spooled telemetry out.
  batch.clear();
  for (uint64_t i = 1001; i <= 1100; ++i) batch.push_back(rec(i, kShedKeep, 1000));
  ASSERT_TRUE((*s)->append(batch));
  EXPECT_EQ((*s)->shed()[kShedKeep], 0u) << "no kept event is dropped while telemetry is left";
  EXPECT_GT((*s)->shed()[kShedTelemetry], refused);
  EXPECT_LE((*s)->bytes(), o.max_bytes);
  auto seqs = drain_spool(**s, 50);
  std::vector<uint64_t> kept(seqs.end() - 100, seqs.end());
  EXPECT_EQ(kept, range(1001, 1100));
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end())) << "order holds through compaction";
  // Only kept events left and still full: then they are dropped too, and counted.
  batch.clear();
  for (uint64_t i = 2001; i <= 2400; ++i) batch.push_back(rec(i, kShedKeep, 1000));
  ASSERT_TRUE((*s)->append(batch));
  EXPECT_GT((*s)->shed()[kShedKeep], 0u);
  EXPECT_LE((*s)->bytes(), o.max_bytes);
}

// An output that fails its first `failures` calls, then takes everything.
class FlakyOutput final : public Output {
 public:
  explicit FlakyOutput(int failures) : failures_(failures) {}
  std::string describe() const override { return "flaky"; }
  Delivery deliver(std::span<const Record> batch) override {
    std::lock_guard l(mu);
    Delivery d;
    if (failures_ > 0) {
      --failures_;
      d.delivered = batch.size() / 2;  // half went through before the failure
      d.error = "receiver down";
    } else {
      d.delivered = batch.size();
    }
    for (size_t i = 0; i < d.delivered; ++i) seqs.push_back(batch[i].seq);
    return d;
  }
  std::mutex mu;
  std::vector<uint64_t> seqs;

 private:
  int failures_;
};

TEST(Worker, RetriesUntilTheReceiverTakesEverythingInOrder) {
  TempDir d;
  auto spool = Spool::open(d.path(), {});
  ASSERT_TRUE(spool);
  auto out = std::make_unique<FlakyOutput>(3);
  FlakyOutput* o = out.get();
  Worker w(WorkerOptions{.name = "t"}, std::move(out), std::move(*spool));
  for (uint64_t i = 1; i <= 1000; ++i) w.offer(rec(i));
  ASSERT_TRUE(w.drain(20'000'000'000ull));
  auto st = w.stats();
  EXPECT_EQ(st.retries, 3u);
  EXPECT_EQ(st.delivered, 1000u);
  EXPECT_EQ(st.dropped_total(), 0u);
  std::lock_guard l(o->mu);
  EXPECT_EQ(o->seqs, range(1, 1000)) << "each exactly once here, in order";
}

// Records gather for linger_ns before the thread takes them (one wake-up per
// batch), a full batch goes at once, and drain() does not wait out the linger.
TEST(Worker, LingersForABatchButNotPastAFullOneOrADrain) {
  auto out = std::make_unique<FlakyOutput>(0);
  FlakyOutput* o = out.get();
  Worker w(WorkerOptions{.name = "t", .batch_records = 64, .linger_ns = 10'000'000'000ull}, std::move(out), nullptr);
  auto delivered = [&] {
    std::lock_guard l(o->mu);
    return o->seqs.size();
  };
  auto wait_for = [&](size_t n) {
    for (int i = 0; i < 2000 && delivered() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return delivered();
  };
  std::vector<Record> batch;
  for (uint64_t i = 1; i <= 10; ++i) batch.push_back(rec(i));
  w.offer(batch);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(delivered(), 0u) << "10 records of a 64-record batch wait for the linger";
  batch.clear();
  for (uint64_t i = 11; i <= 64; ++i) batch.push_back(rec(i));
  w.offer(batch);
  EXPECT_EQ(wait_for(64), 64u) << "a full batch goes at once";
  w.offer(rec(65));
  ASSERT_TRUE(w.drain(2'000'000'000ull)) << "drain() ends the linger";
  std::lock_guard l(o->mu);
  EXPECT_EQ(o->seqs, range(1, 65));
}

TEST(Worker, AFullDiskKeepsRecordsUpToTheQueueThenCountsDropsByClass) {
  auto full = FileOutput::open(file_options("/dev/full", 0, 1));
  ASSERT_TRUE(full);
  Worker w(WorkerOptions{.name = "full", .queue_max_bytes = 64 << 10, .stop_timeout_ns = 100'000'000},
           std::move(*full), nullptr);
  for (uint64_t i = 1; i <= 200; ++i) w.offer(rec(i, kShedTelemetry, 1000));
  for (uint64_t i = 201; i <= 230; ++i) w.offer(rec(i, kShedKeep, 1000));
  EXPECT_FALSE(w.drain(600'000'000ull));
  auto st = w.stats();
  EXPECT_EQ(st.delivered, 0u);
  EXPECT_NE(st.last_error.find("write events to /dev/full: ENOSPC"), std::string::npos) << st.last_error;
  EXPECT_GT(st.dropped[kShedTelemetry], 100u);
  EXPECT_EQ(st.dropped[kShedKeep], 0u) << "kept events have twice the room";
}

TEST(FileOutput, RotatesBySizeKeepsWholeLinesAndMode0600) {
  TempDir d;
  std::string path = d.path() + "/sub/events.jsonl";
  auto f = FileOutput::open(file_options(path, 10'000, 3));
  ASSERT_TRUE(f) << f.error().message;
  std::vector<Record> batch;
  for (uint64_t i = 1; i <= 100; ++i) batch.push_back(rec(i, kShedNormal, 200));  // ~22 KiB: rotates twice+
  auto dl = (*f)->deliver(batch);
  EXPECT_EQ(dl.delivered, 100u);
  EXPECT_TRUE(dl.error.empty()) << dl.error;
  EXPECT_GE((*f)->rotations(), 2u);
  EXPECT_TRUE(std::filesystem::exists(path + ".1"));
  EXPECT_TRUE(std::filesystem::exists(path + ".2"));
  EXPECT_FALSE(std::filesystem::exists(path + ".3")) << "max_files 3: the live file and two rotated";
  struct stat st{};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The newest lines, in order, whole, across .2, .1 and the live file.
  std::vector<uint64_t> seqs;
  for (const auto& p : {path + ".2", path + ".1", path}) {
    std::ifstream in(p);
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      seqs.push_back(j["seq"].get<uint64_t>());
    }
    EXPECT_LE(std::filesystem::file_size(p), 10'000u);
  }
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(seqs.back(), 100u);
  EXPECT_EQ(seqs, range(seqs.front(), 100));
}

TEST(FileOutput, ADeviceOrFifoIsWrittenAsItIsNeverRotatedOrChmodded) {
  // A sink at /dev/null (the bench's) or a FIFO must not be renamed or made 0600.
  TempDir d;
  std::string fifo = d.path() + "/events.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  Fd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(reader);
  auto f = FileOutput::open(file_options(fifo, 1000, 3));
  ASSERT_TRUE(f) << f.error().message;
  size_t got = 0;
  char buf[65536];
  for (uint64_t i = 1; i <= 20; ++i) {
    std::vector<Record> batch{rec(i, kShedNormal, 200)};
    auto dl = (*f)->deliver(batch);
    EXPECT_EQ(dl.delivered, 1u) << dl.error;
    for (ssize_t n; (n = ::read(reader.get(), buf, sizeof buf)) > 0;) got += static_cast<size_t>(n);
  }
  EXPECT_EQ((*f)->rotations(), 0u);
  EXPECT_FALSE(std::filesystem::exists(fifo + ".1"));
  struct stat st{};
  ASSERT_EQ(stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_GT(got, 20u * 200);
}

TEST(Syslog, FormatsRfc5424WithStructuredDataAndMicroseconds) {
  Record r = rec(42);
  r.kind = 2;                // egress
  r.severity = kSevHigh;     // a deny
  r.time_ns = 1'764'576'000'123'456'789ull;  // 2025-12-01T08:00:00.123456789Z
  std::string m = format_rfc5424(r, syslog_facility("local0"), "host-1", "vigil", 4242);
  // PRI = local0 (16) * 8 + err (3)
  EXPECT_EQ(m, "<131>1 2025-12-01T08:00:00.123456Z host-1 vigil 4242 egress "
               "[vigil@32473 kind=\"egress\" severity=\"high\" seq=\"42\"] " + r.line);
  // RFC 3164, as syslog(3) writes it to /dev/log (in local time: here UTC).
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(format_rfc3164(r, syslog_facility("local0"), "", "vigil", 4242),
            "<131>Dec  1 08:00:00 vigil[4242]: " + r.line);
  EXPECT_EQ(format_rfc3164(r, syslog_facility("local0"), "host-1", "vigil", 4242),
            "<131>Dec  1 08:00:00 host-1 vigil[4242]: " + r.line);
  EXPECT_EQ(syslog_facility("daemon"), 3);
  EXPECT_EQ(syslog_facility("nope"), -1);
  auto opts = [](std::string address, std::string facility = "daemon") {
    SyslogOptions o;
    o.address = std::move(address);
    o.facility = std::move(facility);
    return o;
  };
  EXPECT_TRUE(SyslogOutput::create(opts("tls://127.0.0.1:6514")));  // RFC 5425, the system's CAs
  SyslogOptions no_ca = opts("tls://127.0.0.1:6514");
  no_ca.tls.ca_file = "/nonexistent/ca.pem";
  auto tls = SyslogOutput::create(no_ca);
  ASSERT_FALSE(tls);
  EXPECT_NE(tls.error().message.find("/nonexistent/ca.pem"), std::string::npos) << tls.error().message;
  SyslogOptions ca_on_udp = opts("udp://127.0.0.1:514");
  ca_on_udp.tls.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  EXPECT_FALSE(SyslogOutput::create(ca_on_udp));
  EXPECT_FALSE(SyslogOutput::create(opts("udp://127.0.0.1")));
  SyslogOptions bad_format = opts("unix:///dev/log");
  bad_format.format = "cef";
  auto bf = SyslogOutput::create(bad_format);
  ASSERT_FALSE(bf);
  EXPECT_NE(bf.error().message.find("syslog format 'cef'"), std::string::npos);
  auto bad = SyslogOutput::create(opts("udp://127.0.0.1:514", "nofacility"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("facility 'nofacility'"), std::string::npos);
}

// A batch larger than one write (256 KiB) goes out in several writes of whole
// octet-counted frames (RFC 6587): every message arrives once, in order, intact.
TEST(Syslog, TcpBatchLargerThanOneWriteArrivesFramedInOrder) {
  Fd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(lfd);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(lfd.get(), 1), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  std::string got;
  std::thread reader([&] {
    Fd c(::accept4(lfd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char buf[65536];
    ssize_t n;
    while ((n = ::read(c.get(), buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  });
  constexpr uint64_t kCount = 3000;  // ~2.8 MB: eleven writes
  std::vector<Record> batch;
  for (uint64_t i = 0; i < kCount; ++i) batch.push_back(rec(i, kShedNormal, 900));
  {
    SyslogOptions o;
    o.address = fmt::format("tcp://127.0.0.1:{}", ntohs(a.sin_port));
    o.hostname = "host-1";
    auto out = SyslogOutput::create(o);
    ASSERT_TRUE(out) << out.error().message;
    Delivery d = (*out)->deliver(batch);
    EXPECT_EQ(d.delivered, kCount) << d.error;
    EXPECT_TRUE(d.error.empty()) << d.error;
  }  // closes the connection: the reader sees EOF
  reader.join();
  size_t off = 0;
  uint64_t next = 0;
  while (off < got.size()) {
    size_t sp = got.find(' ', off);
    ASSERT_NE(sp, std::string::npos);
    size_t n = std::stoul(got.substr(off, sp - off));
    std::string msg = got.substr(sp + 1, n);
    ASSERT_EQ(msg.size(), n) << "frame " << next << " cut";
    EXPECT_EQ(msg, format_rfc5424(batch[next], syslog_facility("daemon"), "host-1", "vigil", getpid()))
        << "frame " << next;
    off = sp + 1 + n;
    ++next;
  }
  EXPECT_EQ(next, kCount);
}

TEST(Sinks, EventsAreClassedForShedding) {
  Event e;
  e.seq = 7;
  EgressEvent deny;
  deny.verdict = "deny";
  e.body = deny;
  Record r = record_of(e, "{}");
  EXPECT_EQ(r.shed, kShedKeep);
  EXPECT_EQ(r.severity, kSevHigh);
  EXPECT_EQ(event_kind_name(r.kind), "egress");
  e.body = ApiCallEvent{};
  EXPECT_EQ(record_of(e, "{}").shed, kShedTelemetry);
  FindingEvent critical;
  critical.severity = "critical";
  e.body = critical;
  EXPECT_EQ(record_of(e, "{}").severity, kSevCritical);
}

// Security review F19: the file sink opened a symlink planted in a directory
// others can write (and chmod-ed its target as root); write_file_atomic wrote
// through a predictable temporary name; data directories were made 0755.
TEST(SecurityF19, PlantedSymlinksAndSharedDirectoriesAreRefused) {
  TempDir d;
  std::string shared = d.path() + "/shared";
  ASSERT_EQ(mkdir(shared.c_str(), 0777), 0);
  ASSERT_EQ(chmod(shared.c_str(), 01777), 0);  // like /tmp
  std::string victim = d.path() + "/victim";
  std::ofstream(victim) << "precious\n";
  ASSERT_EQ(chmod(victim.c_str(), 0644), 0);
  ASSERT_EQ(symlink(victim.c_str(), (shared + "/events.jsonl").c_str()), 0);
  auto f = FileOutput::open(file_options(shared + "/events.jsonl", 1000, 3));
  EXPECT_FALSE(f) << "opened a planted symlink";
  struct stat st{};
  ASSERT_EQ(stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u) << "the symlink's target was chmod-ed";
  // Writable by others and not sticky: anyone could swap the file.
  std::string open_dir = d.path() + "/open";
  ASSERT_EQ(mkdir(open_dir.c_str(), 0777), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  auto g = FileOutput::open(file_options(open_dir + "/events.jsonl", 1000, 3));
  ASSERT_FALSE(g);
  EXPECT_NE(g.error().message.find("writable by others"), std::string::npos) << g.error().message;
  // The old temporary name of write_file_atomic, planted as a symlink.
  std::string target = d.path() + "/policy.yaml";
  ASSERT_EQ(symlink(victim.c_str(), (d.path() + "/.policy.yaml.tmp").c_str()), 0);
  ASSERT_TRUE(write_file_atomic(target, "new\n"));
  EXPECT_EQ(read_small_file(victim), "precious\n");
  EXPECT_EQ(read_small_file(target), "new\n");
  ASSERT_EQ(stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Data directories: made 0700, an existing one tightened.
  std::string data = d.path() + "/var/lib/vigil";
  ASSERT_TRUE(ensure_private_dir(data));
  ASSERT_EQ(stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(chmod(data.c_str(), 0755), 0);
  ASSERT_TRUE(ensure_private_dir(data));
  ASSERT_EQ(stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // Under a directory others can write, not sticky: refused, named.
  auto bad = ensure_private_dir(open_dir + "/data");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find(open_dir), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace vigil::sinks
