// metrics_test.cc - the Prometheus text the endpoint serves: counters by
// label, cumulative histogram buckets, gauges only when known.
#include <gtest/gtest.h>

#include "spamgate/metrics.h"

namespace spamgate {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

// The value of sample `key` ("name{labels}") in `text`, -1 if absent.
double value_of(const std::string& text, const std::string& key) {
  std::size_t at = text.find("\n" + key + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size() + 2));
}

TEST(Metrics, CountersHistogramsAndGaugesInPrometheusText) {
  Metrics& m = Metrics::get();
  std::string before = m.render({});
  m.message(Metrics::Direction::kInbound, Metrics::Outcome::kTag, 72, true);    // 7.2
  m.message(Metrics::Direction::kInbound, Metrics::Outcome::kAccept, -10, true);  // -1.0
  m.message(Metrics::Direction::kOutbound, Metrics::Outcome::kTempfail, 0, false);  // refused at MAIL FROM: no score
  m.check("unit_test_check", 0.003, false);
  m.check("unit_test_check", 3.0, true);
  Metrics::Gauges g;
  g.resident_bytes = 1048576;
  g.held_accounts = 2;
  std::string t = m.render(g);
  EXPECT_TRUE(has_line(t, "# TYPE spamgate_messages_total counter"));
  const std::string tempfail = "spamgate_messages_total{direction=\"outbound\",action=\"tempfail\"}";
  EXPECT_EQ(value_of(t, tempfail), value_of(before, tempfail) + 1);
  const std::string tag = "spamgate_messages_total{direction=\"inbound\",action=\"tag\"}";
  EXPECT_EQ(value_of(t, tag), value_of(before, tag) + 1);
  // Cumulative buckets (this test's two inbound scores on top of earlier
  // ones): -1.0 falls in le=0 and every bucket after it; 7.2 from le=7.5 on.
  const std::string b = "spamgate_score_bucket{direction=\"inbound\",le=";
  EXPECT_EQ(value_of(t, b + "\"-5\"}"), value_of(before, b + "\"-5\"}"));
  EXPECT_EQ(value_of(t, b + "\"0\"}"), value_of(before, b + "\"0\"}") + 1);
  EXPECT_EQ(value_of(t, b + "\"5\"}"), value_of(before, b + "\"5\"}") + 1);
  EXPECT_EQ(value_of(t, b + "\"7.5\"}"), value_of(before, b + "\"7.5\"}") + 2);
  EXPECT_EQ(value_of(t, b + "\"+Inf\"}"), value_of(before, b + "\"+Inf\"}") + 2);
  const std::string sum = "spamgate_score_sum{direction=\"inbound\"}";
  EXPECT_NEAR(value_of(t, sum), value_of(before, sum) + 6.2, 1e-9);
  EXPECT_TRUE(has_line(t, "spamgate_check_duration_seconds_bucket{check=\"unit_test_check\",le=\"0.0025\"} 0")) << t;
  EXPECT_TRUE(has_line(t, "spamgate_check_duration_seconds_bucket{check=\"unit_test_check\",le=\"0.005\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "spamgate_check_duration_seconds_bucket{check=\"unit_test_check\",le=\"+Inf\"} 2")) << t;
  EXPECT_TRUE(has_line(t, "spamgate_check_errors_total{check=\"unit_test_check\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "spamgate_resident_memory_bytes 1048576")) << t;
  EXPECT_TRUE(has_line(t, "spamgate_outbound_held 2")) << t;
  EXPECT_EQ(m.render({}).find("spamgate_outbound_held"), std::string::npos) << "unknown: not exported";
  EXPECT_GT(resident_bytes(), 1000000u);
}

}  // namespace
}  // namespace spamgate
