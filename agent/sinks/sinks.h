// Event sinks: where encoded JSON lines go (DESIGN.md §5 events.sinks).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "base/fd.h"
#include "base/result.h"

namespace vigil {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string name() const = 0;
  // Buffers one line (no newline in `line`).
  virtual Status write(std::string_view line) = 0;
  // Pushes buffered lines out; called after each batch of events.
  virtual Status flush() = 0;
  // Lines given up on so far (reported as lost{source: "sink_<name>"}).
  virtual uint64_t dropped() const = 0;
};

// Writes lines to an fd, owned or not; buffers up to a batch. Lines that
// cannot be written are kept (a full disk may drain) up to kMaxBacklog.
class FdSink : public Sink {
 public:
  static constexpr size_t kMaxBacklog = 16u << 20;

  FdSink(std::string name, int fd) : name_(std::move(name)), fd_(fd) {}  // not owned (stdout)
  FdSink(std::string name, Fd fd) : name_(std::move(name)), fd_(fd.get()), owned_(std::move(fd)) {}
  ~FdSink() override;
  std::string name() const override { return name_; }
  Status write(std::string_view line) override;
  Status flush() override;
  uint64_t dropped() const override { return dropped_; }

 private:
  std::string name_;
  int fd_;
  Fd owned_;
  std::string buf_;
  uint64_t dropped_ = 0;
};

// Opens (creating parent directories, appending) the file of a file sink.
Result<std::unique_ptr<Sink>> open_file_sink(const std::string& path);
Result<std::vector<std::unique_ptr<Sink>>> open_sinks(const std::vector<SinkConfig>& configs);

}  // namespace vigil
