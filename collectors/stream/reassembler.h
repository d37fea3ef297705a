// Orders one direction of a connection's captured bytes by stream offset and
// hands them on in order, with explicit gaps for bytes that were never captured
// (capture cap, lost ring-buffer records). Small reordering (two threads
// writing one socket on two CPUs) is absorbed by a bounded wait.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace vigil {

class Reassembler {
 public:
  struct Sink {
    virtual ~Sink() = default;
    virtual void data(std::string_view bytes, uint64_t ts) = 0;
    virtual void gap(uint64_t bytes, uint64_t ts) = 0;
  };

  // max_pending: out-of-order chunks held before the oldest hole is declared a gap.
  // from_start: offsets begin at 0 (the connection was seen opening); otherwise
  // the first record fixes the origin (a stream joined midway).
  explicit Reassembler(size_t max_pending = 16, bool from_start = true)
      : max_pending_(max_pending), started_(from_start) {}

  // One syscall's worth: `length` bytes at `offset`, of which `captured` is the
  // first part that the kernel copied.
  void add(uint64_t offset, uint64_t length, std::string_view captured, uint64_t ts, Sink& sink);
  // Gives up waiting: delivers everything held, holes as gaps.
  void flush(Sink& sink);
  // Gives up on holes before chunks that have waited since before `ts`.
  void flush_before(uint64_t ts, Sink& sink);

  uint64_t next_offset() const { return next_; }
  uint64_t gap_bytes() const { return gap_bytes_; }
  uint64_t duplicate_bytes() const { return dup_bytes_; }
  size_t pending() const { return pending_.size(); }

 private:
  struct Chunk {
    uint64_t length;
    std::string captured;
    uint64_t ts;
  };
  void deliver(uint64_t offset, uint64_t length, std::string_view captured, uint64_t ts, Sink& sink);
  void drain(Sink& sink);

  size_t max_pending_;
  bool started_ = false;
  uint64_t next_ = 0;
  uint64_t gap_bytes_ = 0;
  uint64_t dup_bytes_ = 0;
  std::map<uint64_t, Chunk> pending_;
};

}  // namespace vigil
