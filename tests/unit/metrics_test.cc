// The Prometheus text exposition: HELP/TYPE lines, label escaping, integer and
// float values.
#include <gtest/gtest.h>

#include "agent/metrics/exposition.h"

namespace vigil::metrics {
namespace {

TEST(Exposition, WritesFamiliesSamplesAndEscapesLabelValues) {
  Exposition m;
  m.family("vigil_events_total", "counter", "Events shipped,\nby kind \\ type.");
  m.sample({{"kind", "api_call"}}, 42);
  m.sample({{"kind", "a\"b\\c\nd"}, {"x", ""}}, 1e17);
  m.family("vigil_uptime_seconds", "gauge", "Seconds.");
  m.sample(0.25);
  EXPECT_EQ(m.text(),
            "# HELP vigil_events_total Events shipped,\\nby kind \\\\ type.\n"
            "# TYPE vigil_events_total counter\n"
            "vigil_events_total{kind=\"api_call\"} 42\n"
            "vigil_events_total{kind=\"a\\\"b\\\\c\\nd\",x=\"\"} 1e+17\n"
            "# HELP vigil_uptime_seconds Seconds.\n"
            "# TYPE vigil_uptime_seconds gauge\n"
            "vigil_uptime_seconds 0.25\n");
}

}  // namespace
}  // namespace vigil::metrics
