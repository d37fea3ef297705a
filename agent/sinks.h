// Event sinks: where encoded JSON lines go (DESIGN.md §5 events.sinks).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "config.h"

namespace vigil {

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string name() const = 0;
  // Buffers one line (no newline in `line`).
  virtual Status write(std::string_view line) = 0;
  // Pushes buffered lines out; called after each batch of events.
  virtual Status flush() = 0;
};

// Writes lines to an fd it may own; buffers up to a batch.
class FdSink : public Sink {
 public:
  FdSink(std::string name, int fd, bool owned) : name_(std::move(name)), fd_(fd), owned_(owned) {}
  ~FdSink() override;
  std::string name() const override { return name_; }
  Status write(std::string_view line) override;
  Status flush() override;

 private:
  std::string name_;
  int fd_;
  bool owned_;
  std::string buf_;
};

// Opens (creating parent directories, appending) the file of a file sink.
Result<std::unique_ptr<Sink>> open_file_sink(const std::string& path);
Result<std::vector<std::unique_ptr<Sink>>> open_sinks(const std::vector<SinkConfig>& configs);

}  // namespace vigil
