// Local outputs: JSON lines to stdout, or to a file rotated by size.
#pragma once

#include <memory>
#include <string>

#include "agent/sinks/worker.h"
#include "base/fd.h"

namespace vigil::sinks {

// JSON lines to an fd (stdout; not owned).
class FdOutput final : public Output {
 public:
  FdOutput(std::string label, int fd) : label_(std::move(label)), fd_(fd) {}
  std::string describe() const override { return label_; }
  Delivery deliver(const std::vector<Record>& batch) override;

 private:
  std::string label_;
  int fd_;
  std::string buf_, tail_;
};

struct FileOptions {
  std::string path;
  uint64_t max_bytes = 100ull << 20;  // rotate beyond this (0: never)
  uint32_t max_files = 10;            // events.jsonl.1 .. .N-1 kept beside the live file
};

// JSON lines appended to a file, mode 0600, parent directories created; at
// max_bytes the file becomes PATH.1 (PATH.1 becomes PATH.2, ...; the oldest goes).
class FileOutput final : public Output {
 public:
  static Result<std::unique_ptr<FileOutput>> open(FileOptions o);
  std::string describe() const override { return o_.path; }
  Delivery deliver(const std::vector<Record>& batch) override;
  uint64_t rotations() const { return rotations_; }

 private:
  explicit FileOutput(FileOptions o) : o_(std::move(o)) {}
  Status reopen();
  Status rotate();

  FileOptions o_;
  Fd fd_;
  uint64_t size_ = 0, rotations_ = 0;
  std::string buf_, tail_;  // tail_: the unwritten rest of a line a failed write cut
};

}  // namespace vigil::sinks
