// Sinks: lines that cannot be written are kept up to the backlog, then counted
// as dropped (reported by the agent as lost{source:"sink_<name>"}), never lost silently.
#include <gtest/gtest.h>

#include <fcntl.h>

#include <string>

#include "agent/sinks/sinks.h"

namespace vigil {
namespace {

TEST(FdSink, AFullDiskKeepsTheBacklogThenCountsWhatItDrops) {
  Fd full(open("/dev/full", O_WRONLY | O_CLOEXEC));  // every write fails with ENOSPC
  ASSERT_TRUE(full);
  FdSink sink("/dev/full", std::move(full));
  const std::string line(1000, 'x');
  const size_t per_line = line.size() + 1;
  const size_t first_drop = FdSink::kMaxBacklog / per_line + 1;  // lines held when the backlog overflows
  Status last;
  for (size_t i = 0; i < first_drop - 1; ++i) last = sink.write(line);
  EXPECT_FALSE(last.ok());
  EXPECT_NE(last.error().message.find("write events to /dev/full: ENOSPC"), std::string::npos) << last.error().message;
  EXPECT_EQ(sink.dropped(), 0u) << "under the backlog, nothing is given up";
  (void)sink.write(line);
  EXPECT_EQ(sink.dropped(), first_drop);
  for (int i = 0; i < 10; ++i) (void)sink.write(line);
  EXPECT_EQ(sink.dropped(), first_drop) << "the next lines are held again";
}

}  // namespace
}  // namespace vigil
