// One sink's thread: a bounded in-memory queue that the poll loop fills (it
// never waits on a disk or a receiver), the spool of a network sink behind it,
// and delivery in order with retries and backoff.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "agent/sinks/record.h"
#include "agent/sinks/spool.h"
#include "base/result.h"

namespace vigil::sinks {

// What a delivery attempt did with the front of a batch, in order.
struct Delivery {
  size_t delivered = 0;   // acknowledged by the receiver (or written)
  size_t rejected = 0;    // after those: refused for good (dropped, counted with `reason`)
  std::string reason;     // why rejected ones were refused
  std::string error;      // non-empty: the rest failed and is retried
  uint64_t retry_after_ns = 0;  // the receiver asked for this wait (Retry-After)
};

// The transport of a sink: file, stdout, syslog, ...
class Output {
 public:
  virtual ~Output() = default;
  virtual std::string describe() const = 0;
  // Sends the records in order. Called only on the sink's thread.
  virtual Delivery deliver(std::span<const Record> batch) = 0;
  // Called when the queue is empty for a moment (buffered outputs push out).
  virtual void idle() {}
};

struct WorkerOptions {
  std::string name;
  size_t queue_max_bytes = 16u << 20;  // in memory, before shedding by class
  size_t batch_records = 512;
  size_t batch_bytes = 1u << 20;
  // How long the thread lets records gather once the first one arrived, unless a
  // batch's worth (batch_records) is waiting sooner: one wake-up per batch, not
  // one per poll round of the producer (each is a futex wake and a context switch).
  uint64_t linger_ns = 5'000'000;
  uint64_t stop_timeout_ns = 5'000'000'000;  // how long stop() keeps trying a receiver
  uint64_t max_backoff_ns = 30'000'000'000;
};

struct WorkerStats {
  std::string name, output;
  uint64_t queued = 0, queue_bytes = 0, queue_capacity = 0;
  uint64_t spool_bytes = 0, spool_records = 0, spool_corrupt = 0;
  uint64_t pending = 0;  // taken from the queue, not yet delivered (spooled or held in memory)
  uint64_t delivered = 0, rejected = 0, retries = 0;
  std::array<uint64_t, kShedClasses> dropped{};  // queue and spool, by class
  uint64_t oldest_unacked_ns = 0;                // wall time of the oldest pending record, 0: none
  std::string last_error, last_reject;
  bool spooled = false;
  uint64_t dropped_total() const { return dropped[0] + dropped[1] + dropped[2] + rejected; }
};

class Worker {
 public:
  // `spool` may be null: local outputs (file, stdout) keep pending records in memory.
  Worker(WorkerOptions o, std::unique_ptr<Output> out, std::unique_ptr<Spool> spool);
  ~Worker();
  // The poll loop's side: moves the record into the queue, sheds when full.
  void offer(Record&& r);
  // The same for a batch, under one lock and with at most one wake-up; the records are moved from.
  void offer(std::span<Record> batch);
  // Delivers what it can within stop_timeout, leaves the rest in the spool, joins.
  void stop();
  // Waits (bounded) until everything offered so far was delivered; for tests and shutdown.
  bool drain(uint64_t timeout_ns);
  WorkerStats stats() const;
  const std::string& name() const { return o_.name; }

 private:
  void run();
  void admit_locked(Record&& r);
  void wake_locked(size_t before);  // notifies the thread when `before` -> now calls for it

  WorkerOptions o_;
  std::unique_ptr<Output> out_;
  std::unique_ptr<Spool> spool_;
  mutable std::mutex mu_;
  std::condition_variable cv_, drained_cv_;
  std::vector<Record> incoming_;
  size_t incoming_bytes_ = 0;
  size_t held_bytes_ = 0;  // offered and not yet spooled (or, without a spool, not yet written)
  bool stopping_ = false;
  bool hurry_ = false;  // drain(): end the linger now
  uint64_t offered_ = 0, done_ = 0;  // records offered / delivered, rejected or dropped
  // Thread-owned, published under mu_ for stats().
  std::vector<Record> local_;  // pending records of an output without a spool
  WorkerStats st_;
  std::thread thread_;
};

}  // namespace vigil::sinks
