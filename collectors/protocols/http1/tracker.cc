#include "collectors/protocols/http1/tracker.h"

namespace vigil::http1 {

Tracker::Tracker(bool client_role, Limits limits)
    : client_(client_role), requests_(Kind::kRequest, limits), responses_(Kind::kResponse, limits) {}

void Tracker::on_data(bool egress, uint64_t offset, uint64_t length, std::string_view captured,
                      uint64_t ts) {
  Direction& d = (egress == client_) ? requests_ : responses_;
  uint64_t gaps = d.reasm.gap_bytes();
  d.reasm.add(offset, length, captured, ts, d);
  stats_.gap_bytes += d.reasm.gap_bytes() - gaps;
  after_input(ts);
}

void Tracker::on_close(uint64_t ts) {
  requests_.reasm.flush(requests_);  // (gap bytes found here are in the parsers' truncation)
  responses_.reasm.flush(responses_);
  requests_.parser.end(ts);
  responses_.parser.end(ts);
  after_input(ts);
  stats_.unpaired_requests += pending_.size();
  pending_.clear();
  stats_.unpaired_responses += early_.size();
  early_.clear();
}

void Tracker::tick(uint64_t now, uint64_t hold_ns) {
  if (requests_.reasm.pending() == 0 && responses_.reasm.pending() == 0) return;
  uint64_t limit = now > hold_ns ? now - hold_ns : 0;
  uint64_t gaps = requests_.reasm.gap_bytes() + responses_.reasm.gap_bytes();
  requests_.reasm.flush_before(limit, requests_);
  responses_.reasm.flush_before(limit, responses_);
  stats_.gap_bytes += requests_.reasm.gap_bytes() + responses_.reasm.gap_bytes() - gaps;
  after_input(now);
}

void Tracker::drop_pending_before(uint64_t ts) {
  while (!pending_.empty() && pending_.front().first_ts <= ts) {
    pending_.pop_front();
    ++stats_.unpaired_requests;
  }
  stats_.unpaired_responses += early_.size();  // its request may be the one lost
  early_.clear();
  skip_responses_ = 0;  // lost track: the parsers resynchronise
}

void Tracker::after_input(uint64_t ts) {
  // A resync in either stream means messages were lost there: requests sent
  // up to now may never see their response, so none of them may be paired.
  if (requests_.parser.invalid_count() != requests_.seen_invalid ||
      responses_.parser.invalid_count() != responses_.seen_invalid) {
    requests_.seen_invalid = requests_.parser.invalid_count();
    responses_.seen_invalid = responses_.parser.invalid_count();
    drop_pending_before(ts);
  }
  for (Message& req : requests_.parser.messages()) {
    if (!early_.empty()) {  // its response came while its body was still arriving
      ready_.push_back(Exchange{std::move(req), std::move(early_.front())});
      early_.pop_front();
      ++stats_.exchanges;
      continue;
    }
    if (pending_.size() >= StreamParser::kMaxPending) {
      // Unanswered requests pile up (a server that never answers, or a peer
      // that wants the agent's memory): the oldest goes, and so will its answer.
      pending_.pop_front();
      ++stats_.unpaired_requests;
      ++skip_responses_;
    }
    responses_.parser.push_request_method(req.method);
    pending_.push_back(std::move(req));
  }
  requests_.parser.messages().clear();
  for (Message& resp : responses_.parser.messages()) {
    if (skip_responses_ > 0) {  // the answer of a request dropped above
      --skip_responses_;
      ++stats_.unpaired_responses;
      continue;
    }
    if (pending_.empty()) {
      const Message* cur = requests_.parser.body_in_progress();
      if (cur && early_.empty() && cur->first_ts <= resp.first_ts) {
        early_.push_back(std::move(resp));
        continue;
      }
    }
    // A response cannot answer a request that started after it.
    if (pending_.empty() || pending_.front().first_ts > resp.first_ts) {
      ++stats_.unpaired_responses;
      continue;
    }
    ready_.push_back(Exchange{std::move(pending_.front()), std::move(resp)});
    pending_.pop_front();
    ++stats_.exchanges;
  }
  responses_.parser.messages().clear();
  // After a switch of protocols the requests side carries the new protocol.
  if (responses_.parser.tunneled() && !requests_.parser.tunneled()) {
    requests_.parser.stop();
    stats_.unpaired_requests += pending_.size();
    pending_.clear();
  }
}

}  // namespace vigil::http1
