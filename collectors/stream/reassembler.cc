#include "collectors/stream/reassembler.h"

#include <algorithm>

namespace vigil {

void Reassembler::deliver(uint64_t offset, uint64_t length, std::string_view captured, uint64_t ts,
                          Sink& sink) {
  if (offset > next_) {
    gap_bytes_ += offset - next_;
    sink.gap(offset - next_, ts);
    next_ = offset;
  }
  uint64_t end = offset + length;
  if (end <= next_) {  // all seen before
    dup_bytes_ += length;
    return;
  }
  uint64_t skip = next_ - offset;  // overlap with what was delivered
  dup_bytes_ += skip;
  if (skip < captured.size()) {
    sink.data(captured.substr(skip), ts);
  }
  uint64_t delivered_to = offset + std::max<uint64_t>(captured.size(), skip);
  if (delivered_to < end) {
    gap_bytes_ += end - delivered_to;
    sink.gap(end - delivered_to, ts);  // beyond the capture cap
  }
  next_ = end;
}

void Reassembler::drain(Sink& sink) {
  while (!pending_.empty() && pending_.begin()->first <= next_) {
    auto node = pending_.extract(pending_.begin());
    deliver(node.key(), node.mapped().length, node.mapped().captured, node.mapped().ts, sink);
  }
}

void Reassembler::add(uint64_t offset, uint64_t length, std::string_view captured, uint64_t ts,
                      Sink& sink) {
  captured = captured.substr(0, length);
  if (!started_) {
    // The first record seen fixes the origin: a connection may predate capture.
    started_ = true;
    next_ = offset;
  }
  if (offset <= next_) {
    deliver(offset, length, captured, ts, sink);
    drain(sink);
    return;
  }
  pending_.insert_or_assign(offset, Chunk{length, std::string(captured), ts});
  if (pending_.size() > max_pending_) {
    // The hole is not going to be filled (lost record): move past it.
    auto node = pending_.extract(pending_.begin());
    deliver(node.key(), node.mapped().length, node.mapped().captured, node.mapped().ts, sink);
    drain(sink);
  }
}

void Reassembler::flush_before(uint64_t ts, Sink& sink) {
  while (!pending_.empty() && pending_.begin()->second.ts < ts) {
    auto node = pending_.extract(pending_.begin());
    deliver(node.key(), node.mapped().length, node.mapped().captured, node.mapped().ts, sink);
    drain(sink);
  }
}

void Reassembler::flush(Sink& sink) {
  while (!pending_.empty()) {
    auto node = pending_.extract(pending_.begin());
    deliver(node.key(), node.mapped().length, node.mapped().captured, node.mapped().ts, sink);
  }
}

}  // namespace vigil
