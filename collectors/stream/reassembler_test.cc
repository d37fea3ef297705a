#include "collectors/stream/reassembler.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

struct Recorder : Reassembler::Sink {
  std::string out;  // gaps shown as '#' per byte
  void data(std::string_view b, uint64_t) override { out.append(b); }
  void gap(uint64_t n, uint64_t) override { out.append(n, '#'); }
};

TEST(Reassembler, InOrder) {
  Reassembler r;
  Recorder s;
  r.add(0, 3, "abc", 1, s);
  r.add(3, 2, "de", 2, s);
  EXPECT_EQ(s.out, "abcde");
  EXPECT_EQ(r.next_offset(), 5u);
}

TEST(Reassembler, OffsetsStartAtZeroForConnectionsSeenOpening) {
  Reassembler r;
  Recorder s;
  r.add(3, 1, "d", 1, s);
  r.flush(s);
  EXPECT_EQ(s.out, "###d");
}

TEST(Reassembler, FlushBeforeGivesUpOnOldHolesOnly) {
  Reassembler r;
  Recorder s;
  r.add(2, 1, "c", 10, s);
  r.add(5, 1, "f", 20, s);
  r.flush_before(15, s);
  EXPECT_EQ(s.out, "##c");
  r.flush_before(25, s);
  EXPECT_EQ(s.out, "##c##f");
}

TEST(Reassembler, FirstRecordFixesTheOriginOfAJoinedStream) {
  Reassembler r(16, false);
  Recorder s;
  r.add(1000, 2, "ab", 1, s);
  EXPECT_EQ(s.out, "ab");
  EXPECT_EQ(r.gap_bytes(), 0u);
}

TEST(Reassembler, ReorderedChunksAreDeliveredInOrder) {
  Reassembler r;
  Recorder s;
  r.add(0, 2, "ab", 1, s);
  r.add(4, 2, "ef", 3, s);
  r.add(2, 2, "cd", 2, s);
  EXPECT_EQ(s.out, "abcdef");
  EXPECT_EQ(r.pending(), 0u);
}

TEST(Reassembler, CaptureCapBecomesAGap) {
  Reassembler r;
  Recorder s;
  r.add(0, 6, "abc", 1, s);  // 6 bytes on the wire, 3 captured
  r.add(6, 1, "g", 2, s);
  EXPECT_EQ(s.out, "abc###g");
  EXPECT_EQ(r.gap_bytes(), 3u);
}

TEST(Reassembler, LostRecordBecomesAGapAfterTheWait) {
  Reassembler r(2);
  Recorder s;
  r.add(0, 1, "a", 1, s);
  // offset 1..3 lost for good
  r.add(3, 1, "d", 2, s);
  r.add(4, 1, "e", 3, s);
  EXPECT_EQ(s.out, "a");
  r.add(5, 1, "f", 4, s);  // third pending: give up on the hole
  EXPECT_EQ(s.out, "a##def");
}

TEST(Reassembler, FlushDeliversHeldChunks) {
  Reassembler r;
  Recorder s;
  r.add(0, 1, "a", 1, s);
  r.add(5, 1, "f", 2, s);
  r.flush(s);
  EXPECT_EQ(s.out, "a####f");
}

TEST(Reassembler, DuplicatesAndOverlapsAreTrimmed) {
  Reassembler r;
  Recorder s;
  r.add(0, 4, "abcd", 1, s);
  r.add(2, 4, "cdef", 2, s);
  r.add(0, 2, "ab", 3, s);
  EXPECT_EQ(s.out, "abcdef");
  EXPECT_EQ(r.duplicate_bytes(), 4u);
}

}  // namespace
}  // namespace vigil
