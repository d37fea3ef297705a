// Local outputs: JSON lines to stdout, or to a file rotated by size.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "agent/audit/chain.h"
#include "agent/sinks/worker.h"
#include "base/fd.h"

namespace vigil::sinks {

// JSON lines to an fd (stdout; not owned).
class FdOutput final : public Output {
 public:
  FdOutput(std::string label, int fd) : label_(std::move(label)), fd_(fd) {}
  std::string describe() const override { return label_; }
  Delivery deliver(std::span<const Record> batch) override;

 private:
  std::string label_;
  int fd_;
  std::string buf_, tail_;
  std::vector<size_t> ends_;
};

struct FileOptions {
  std::string path;
  uint64_t max_bytes = 100ull << 20;  // rotate beyond this (0: never)
  uint32_t max_files = 10;            // events.jsonl.1 .. .N-1 kept beside the live file
  bool chain = false;                 // seal each line into the hash chain (agent/audit)
  bool zstd = false;                  // compress rotated files: PATH.1.zst .. (compress: zstd)
  std::string hmac_key;               // audit.key_file's bytes: HMAC-SHA-256 instead of SHA-256
  std::string node, boot_id;          // for the epoch record a chained file starts each run with
};

// JSON lines appended to a file, mode 0600, parent directories created; at
// max_bytes the file becomes PATH.1 (PATH.1 becomes PATH.2, ...; the oldest goes),
// with `zstd` then compressed to PATH.1.zst on the sink's thread.
// Chained: each line sealed (chain{prev, hash}), continuing across rotation and
// restarts; each run starts with an epoch record naming the file and hash it continues.
class FileOutput final : public Output {
 public:
  static Result<std::unique_ptr<FileOutput>> open(FileOptions o);
  std::string describe() const override { return o_.path; }
  Delivery deliver(std::span<const Record> batch) override;
  uint64_t rotations() const { return rotations_; }

  // Where the chain stands, for checkpoints (read from another thread).
  struct ChainState {
    std::string file;   // the live file's name
    uint64_t seq = 0;   // the last event written
    std::string hash;   // the last whole line's hash
    uint64_t rotations = 0;
  };
  ChainState chain_state() const {
    std::lock_guard l(state_mu_);
    return state_;
  }

 private:
  explicit FileOutput(FileOptions o) : o_(std::move(o)) {}
  Status reopen();
  Status rotate();
  void compress_rotated();
  Status resume_chain();

  FileOptions o_;
  audit::Chain chain_;
  std::vector<audit::Digest> digests_;  // each sealed line's hash, this round
  std::vector<size_t> ends_;             // where each line of buf_ ends
  Fd fd_;
  uint64_t size_ = 0, rotations_ = 0;
  bool regular_ = true;  // a regular file (rotated); else a device or FIFO, written as it is
  std::string buf_, tail_;  // tail_: the unwritten rest of a line a failed write cut
  mutable std::mutex state_mu_;
  ChainState state_;
};

}  // namespace vigil::sinks
