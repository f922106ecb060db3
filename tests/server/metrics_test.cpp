// The Prometheus text: histograms cumulative with +Inf, counters by label, the engine's gauges.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "server/metrics.h"
#include "server/prometheus_text.h"
#include "test_support.h"

namespace llama3::server {
namespace {

using ::testing::HasSubstr;

TEST(Metrics, HistogramBucketsAreCumulative) {
  Histogram h({0.125, 1.0});
  h.observe(0.0625);
  h.observe(0.125);  // on a bound: counts as <= it
  h.observe(0.5);
  h.observe(7.0);
  std::string out;
  h.render(out, "x_seconds", "help text");
  EXPECT_THAT(out, HasSubstr("# HELP x_seconds help text\n# TYPE x_seconds histogram\n"));
  EXPECT_THAT(out, HasSubstr("x_seconds_bucket{le=\"0.125\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("x_seconds_bucket{le=\"1\"} 3\n"));
  EXPECT_THAT(out, HasSubstr("x_seconds_bucket{le=\"+Inf\"} 4\n"));
  EXPECT_THAT(out, HasSubstr("x_seconds_sum 7.6875\n"));
  EXPECT_THAT(out, HasSubstr("x_seconds_count 4\n"));
}

TEST(Metrics, RendersServerAndEngineFigures) {
  ServerMetrics m;
  m.count_request("/v1/completions", 200);
  m.count_request("/v1/completions", 200);
  m.count_request("/v1/chat/completions", 429);
  m.observe_time_to_first_token(0.03);
  m.observe_inter_token_latency(0.02);
  EngineMetrics e;
  e.requests_waiting = 3;
  e.requests_running = 2;
  e.prompt_tokens = 200;
  e.prompt_tokens_cached = 50;
  e.generated_tokens = 17;
  e.preemptions = 4;
  e.kv_blocks_total = 100;
  e.kv_blocks_used = 25;
  e.requests_cancelled = 1;
  e.logits_checked = 900;
  e.logits_nonfinite = 2;
  const std::string out = m.render(e);
  EXPECT_THAT(out, HasSubstr("llama3_http_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("llama3_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"429\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("llama3_prompt_tokens_total 200\n"));
  EXPECT_THAT(out, HasSubstr("llama3_generation_tokens_total 17\n"));
  EXPECT_THAT(out, HasSubstr("llama3_prefix_cache_hit_rate 0.25\n"));
  EXPECT_THAT(out, HasSubstr("llama3_requests_waiting 3\n"));
  EXPECT_THAT(out, HasSubstr("llama3_requests_running 2\n"));
  EXPECT_THAT(out, HasSubstr("llama3_kv_blocks_used 25\n"));
  EXPECT_THAT(out, HasSubstr("llama3_kv_cache_usage_ratio 0.25\n"));
  EXPECT_THAT(out, HasSubstr("llama3_preemptions_total 4\n"));
  EXPECT_THAT(out, HasSubstr("llama3_logits_checked_total 900\n"));
  EXPECT_THAT(out, HasSubstr("llama3_logits_nonfinite_total 2\n"));
  EXPECT_THAT(out, HasSubstr("llama3_engine_requests_total{outcome=\"cancelled\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("llama3_time_to_first_token_seconds_count 1\n"));
  EXPECT_THAT(out, HasSubstr("llama3_inter_token_latency_seconds_bucket{le=\"0.025\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE llama3_request_duration_seconds histogram\n"));
  // The process's own memory, read when rendered: present and plausible (this test is running).
  const PrometheusSamples samples = parse_prometheus_text(out);
  EXPECT_GT(sample(samples, "process_resident_memory_bytes").value_or(0), 1 << 20);
  if (llama3::testing::kSanitized) {  // ASan's allocator replaces glibc's: its figures would be 0, so none are shown
    EXPECT_FALSE(sample(samples, "llama3_heap_in_use_bytes").has_value());
  } else {
    EXPECT_GT(sample(samples, "llama3_heap_in_use_bytes").value_or(0), 0);
    EXPECT_TRUE(sample(samples, "llama3_heap_free_held_bytes").has_value());
  }
  // Every sample line is "name{labels} value" or "name value".
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("#")) continue;
    EXPECT_EQ(std::count(line.begin(), line.end(), ' '), 1) << line;
  }
}

TEST(Metrics, HitRateIsZeroBeforeAnyPrompt) {
  EXPECT_THAT(ServerMetrics().render(EngineMetrics{}), HasSubstr("llama3_prefix_cache_hit_rate 0\n"));
}

}  // namespace
}  // namespace llama3::server
