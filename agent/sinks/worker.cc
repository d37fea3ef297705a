#include "agent/sinks/worker.h"

#include <algorithm>
#include <chrono>

#include "base/log.h"

namespace vigil::sinks {
namespace {

uint64_t mono_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

constexpr size_t kRecordOverhead = 64;  // the queue's own bookkeeping per record, roughly
constexpr uint64_t kFirstBackoffNs = 250'000'000;

}  // namespace

Worker::Worker(WorkerOptions o, std::unique_ptr<Output> out, std::unique_ptr<Spool> spool)
    : o_(std::move(o)), out_(std::move(out)), spool_(std::move(spool)) {
  st_.name = o_.name;
  st_.output = out_->describe();
  st_.spooled = spool_ != nullptr;
  st_.queue_capacity = o_.queue_max_bytes;
  if (spool_) {
    st_.spool_bytes = spool_->bytes();
    st_.spool_records = spool_->records();
    st_.spool_corrupt = spool_->corrupt();
  }
  thread_ = std::thread([this] { run(); });
}

Worker::~Worker() { stop(); }

void Worker::admit_locked(Record&& r) {
  size_t size = r.line.size() + kRecordOverhead;
  // Shed by class: telemetry beyond the capacity, the rest beyond 1.5x, keep beyond 2x.
  size_t limit = o_.queue_max_bytes / 2 * (2 + r.shed);
  if (held_bytes_ + size > limit || stopping_) {
    ++st_.dropped[r.shed];
    return;
  }
  incoming_.push_back(std::move(r));
  incoming_bytes_ += size;
  held_bytes_ += size;
  ++st_.queued;
}

// The first record wakes an idle thread (which then lingers), a full batch one that lingers.
void Worker::wake_locked(size_t before) {
  if ((before == 0 && !incoming_.empty()) || (before < o_.batch_records && incoming_.size() >= o_.batch_records))
    cv_.notify_one();
}

void Worker::offer(Record&& r) {
  std::lock_guard l(mu_);
  size_t before = incoming_.size();
  admit_locked(std::move(r));
  wake_locked(before);
}

void Worker::offer(std::span<Record> batch) {
  if (batch.empty()) return;
  std::lock_guard l(mu_);
  size_t before = incoming_.size();
  for (auto& r : batch) admit_locked(std::move(r));
  wake_locked(before);
}

void Worker::stop() {
  {
    std::lock_guard l(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

bool Worker::drain(uint64_t timeout_ns) {
  std::unique_lock l(mu_);
  hurry_ = true;
  cv_.notify_one();
  return drained_cv_.wait_for(l, std::chrono::nanoseconds(timeout_ns), [&] {
    return incoming_.empty() && st_.queued == 0 && st_.pending == 0;
  });
}

WorkerStats Worker::stats() const {
  std::lock_guard l(mu_);
  WorkerStats s = st_;
  s.queue_bytes += incoming_bytes_;
  return s;
}

void Worker::run() {
  std::vector<Record> in;
  uint64_t retry_at = 0, backoff = 0, deadline = 0;
  std::array<uint64_t, kShedClasses> spool_shed_seen{};
  size_t local_bytes = 0;
  while (true) {
    bool stopping;
    {
      std::unique_lock l(mu_);
      bool pending = spool_ ? spool_->records() > 0 : !local_.empty();
      uint64_t now = mono_ns();
      uint64_t wait = !pending ? 1'000'000'000 : retry_at > now ? retry_at - now : 0;
      if (incoming_.empty() && !stopping_ && wait > 0)
        cv_.wait_for(l, std::chrono::nanoseconds(std::min<uint64_t>(wait, 1'000'000'000)),
                     [&] { return !incoming_.empty() || stopping_; });
      if (!incoming_.empty() && !stopping_ && !hurry_ && o_.linger_ns && incoming_.size() < o_.batch_records)
        cv_.wait_for(l, std::chrono::nanoseconds(o_.linger_ns),
                     [&] { return incoming_.size() >= o_.batch_records || stopping_ || hurry_; });
      hurry_ = false;
      in.swap(incoming_);
      incoming_bytes_ = 0;
      stopping = stopping_;
    }
    uint64_t now = mono_ns();
    if (stopping && deadline == 0) deadline = now + o_.stop_timeout_ns;
    std::string error;
    size_t taken = in.size(), taken_bytes = 0, released = 0;  // released: bytes that left the queue
    for (const auto& r : in) taken_bytes += r.line.size() + kRecordOverhead;
    if (spool_) released = taken_bytes;
    if (!in.empty()) {
      if (spool_) {
        if (auto st = spool_->append(in); !st) error = st.error().message;
      } else {
        for (auto& r : in) {
          local_bytes += r.line.size() + kRecordOverhead;
          local_.push_back(std::move(r));
        }
      }
      in.clear();
    }
    if (spool_)
      if (auto st = spool_->sync(now); !st) error = st.error().message;

    // Deliver, in order, what is due.
    Delivery d;
    bool tried = false;
    uint64_t oldest = 0;
    if (now >= retry_at) {
      std::span<const Record> batch;
      if (spool_) {
        batch = spool_->peek(o_.batch_records, o_.batch_bytes);
      } else {
        // A bounded batch: an output's buffers (sealed lines, the write buffer) stay small.
        size_t n = 0, bytes = 0;
        while (n < local_.size() && n < o_.batch_records && bytes < o_.batch_bytes) bytes += local_[n++].line.size();
        batch = std::span<const Record>(local_.data(), n);
      }
      if (!batch.empty()) {
        tried = true;
        d = out_->deliver(batch);
        size_t done = std::min(batch.size(), d.delivered + d.rejected);
        if (done < batch.size()) oldest = batch[done].time_ns;
        if (spool_) {
          spool_->ack(done);
        } else {
          for (size_t i = 0; i < done; ++i) released += local_[i].line.size() + kRecordOverhead;
          local_bytes -= std::min(local_bytes, released);
          local_.erase(local_.begin(), local_.begin() + static_cast<long>(done));
        }
        if (!d.error.empty()) {
          backoff = backoff ? std::min(backoff * 2, o_.max_backoff_ns) : kFirstBackoffNs;
          retry_at = now + std::max(backoff, d.retry_after_ns);
        } else {
          backoff = 0;
          retry_at = 0;
        }
      }
    }
    bool pending = spool_ ? spool_->records() > 0 : !local_.empty();
    if (!pending && !tried) out_->idle();
    {
      std::lock_guard l(mu_);
      st_.queued -= std::min<uint64_t>(st_.queued, taken);
      held_bytes_ -= std::min(held_bytes_, released);
      st_.delivered += d.delivered;
      st_.rejected += d.rejected;
      if (d.rejected && !d.reason.empty()) st_.last_reject = d.reason;
      if (!d.error.empty()) {
        ++st_.retries;
        if (st_.last_error != d.error) log::warn("sink {}: {} (retrying)", o_.name, d.error);
        st_.last_error = d.error;
      } else if (tried) {
        st_.last_error.clear();
      }
      if (!error.empty()) {
        if (st_.last_error != error) log::warn("sink {}: {}", o_.name, error);
        st_.last_error = error;
      }
      if (spool_) {
        for (int c = 0; c < kShedClasses; ++c) {
          st_.dropped[c] += spool_->shed()[c] - spool_shed_seen[c];
          spool_shed_seen[c] = spool_->shed()[c];
        }
        st_.spool_bytes = spool_->bytes();
        st_.spool_records = spool_->records();
        st_.spool_corrupt = spool_->corrupt();
        st_.pending = spool_->records();
        st_.queue_bytes = 0;
      } else {
        st_.queue_bytes = local_bytes;
        st_.pending = local_.size();
      }
      if (!pending) st_.oldest_unacked_ns = 0;
      else if (oldest) st_.oldest_unacked_ns = oldest;  // else: unchanged since the last attempt
      if (incoming_.empty() && !pending) drained_cv_.notify_all();
    }
    if (stopping && (!pending || now >= deadline)) {
      if (pending && !spool_) {
        std::lock_guard l(mu_);
        for (const auto& r : local_) ++st_.dropped[r.shed];
        log::warn("sink {}: {} events not written at exit", o_.name, local_.size());
      } else if (pending) {
        log::info("sink {}: {} events stay in the spool for the next start", o_.name, spool_->records());
      }
      break;
    }
  }
  if (spool_)
    if (auto st = spool_->sync(0, true); !st) log::warn("sink {}: {}", o_.name, st.error().message);
  out_->idle();
}

}  // namespace vigil::sinks
