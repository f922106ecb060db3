// The pieces of `llama3 bench-serve` that need no server: percentiles as numpy computes them,
// the streamed-completion reader (framing, chunks, every way a stream can be malformed),
// reading our own /metrics text back, the request plan and the vLLM-style summary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <string>

#include "server/completion_stream_reader.h"
#include "server/latency_stats.h"
#include "server/load_client.h"
#include "server/load_summary.h"
#include "server/metrics.h"
#include "server/prometheus_text.h"

namespace llama3::server {
namespace {

using ::testing::HasSubstr;

TEST(LatencyStats, PercentilesInterpolateBetweenRanksAsNumpy) {
  // numpy.percentile([4, 1, 3, 2], [50, 90, 99]) == [2.5, 3.7, 3.97]
  const LatencySummary s = summarize({4.0, 1.0, 3.0, 2.0});
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.p50, 2.5);
  EXPECT_NEAR(s.p90, 3.7, 1e-12);
  EXPECT_NEAR(s.p99, 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.max, 4.0);
  EXPECT_NEAR(s.stdev, std::sqrt(1.25), 1e-12);  // population: numpy.std
}

TEST(LatencyStats, PercentileEndsAndOneValue) {
  std::vector<double> v(101);
  std::iota(v.begin(), v.end(), 0.0);  // 0..100: the q-th percentile is q
  EXPECT_DOUBLE_EQ(percentile(v, 0), 0.0);
  EXPECT_DOUBLE_EQ(percentile(v, 99), 99.0);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 100.0);
  const LatencySummary one = summarize({7.0});
  EXPECT_DOUBLE_EQ(one.p50, 7.0);
  EXPECT_DOUBLE_EQ(one.p99, 7.0);
  EXPECT_DOUBLE_EQ(one.stdev, 0.0);
  const LatencySummary none = summarize({});
  EXPECT_EQ(none.count, 0u);
  EXPECT_DOUBLE_EQ(none.p99, 0.0);
}

// A /v1/completions stream as our server writes it, with a keep-alive comment and usage.
const std::string kCompletionStream =
    ": keep-alive\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"Hel\","
    "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"lo\","
    "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"\","
    "\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
    "\"completion_tokens\":3,\"total_tokens\":12,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n"
    "data: [DONE]\n\n";

TEST(CompletionStreamReader, ReadsAStreamFedOneByteAtATime) {
  CompletionStreamReader r;
  int text_events = 0;
  for (char c : kCompletionStream) text_events += r.feed(std::string_view(&c, 1));
  r.finish();
  EXPECT_EQ(r.problem(), "");
  EXPECT_EQ(text_events, 2);
  EXPECT_EQ(r.content_events(), 2);
  EXPECT_EQ(r.text(), "Hello");
  EXPECT_EQ(r.finish_reason(), "length");
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.prompt_tokens(), 9);
  EXPECT_EQ(r.completion_tokens(), 3);
  EXPECT_EQ(r.cached_tokens(), 4);
}

TEST(CompletionStreamReader, ReadsChatDeltasAndSkipsTheRoleChunk) {
  CompletionStreamReader r;
  const int text_events = r.feed(
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n");
  r.finish();
  EXPECT_EQ(r.problem(), "");
  EXPECT_EQ(text_events, 1);
  EXPECT_EQ(r.text(), "Hi");
  EXPECT_EQ(r.finish_reason(), "stop");
}

// The first problem of a stream, fed whole and finished.
std::string problem_of(const std::string& stream) {
  CompletionStreamReader r;
  r.feed(stream);
  r.finish();
  return r.problem();
}

const std::string kText = "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}\n\n";
const std::string kEnd = "data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n";

TEST(CompletionStreamReader, NamesEveryWayAStreamIsMalformed) {
  EXPECT_EQ(problem_of(kText + kEnd + "data: [DONE]\n\n"), "");
  EXPECT_EQ(problem_of(kText + kEnd), "the stream ended without data: [DONE]");
  EXPECT_EQ(problem_of(kText + "data: [DONE]\n\n"), "no finish_reason");
  EXPECT_THAT(problem_of(kText + kEnd + "data: [DONE]\n\ndata: {}\n\n"), HasSubstr("an event after data: [DONE]"));
  EXPECT_THAT(problem_of(kText + kEnd + "data: [DONE]"), HasSubstr("the stream ended inside an event"));
  EXPECT_THAT(problem_of("data: {\"choices\": [\n\n" + kEnd + "data: [DONE]\n\n"), HasSubstr("not JSON"));
  EXPECT_THAT(problem_of("event: x\n\n" + kText + kEnd + "data: [DONE]\n\n"), HasSubstr("neither data nor a comment"));
  EXPECT_THAT(problem_of("data: {\"object\":\"x\"}\n\n" + kEnd + "data: [DONE]\n\n"),
              HasSubstr("without a 'choices' array"));
  EXPECT_THAT(problem_of(kText + kEnd + kEnd + "data: [DONE]\n\n"), HasSubstr("a second finish_reason"));
  EXPECT_THAT(problem_of(kEnd + kText + "data: [DONE]\n\n"), HasSubstr("text after the finish_reason"));
  EXPECT_EQ(problem_of(kEnd + "data: [DONE]\n\n"), "empty output (finish_reason length)");
  // The server's error event once headers are out (a failed generation).
  EXPECT_EQ(problem_of(kText + "data: {\"error\":{\"message\":\"generation failed: boom\",\"type\":\"server_error\"}}\n\n"
                       "data: [DONE]\n\n"),
            "an error event: generation failed: boom");
}

TEST(PrometheusText, ReadsTheServersOwnMetricsBack) {
  ServerMetrics m;
  m.count_request("/v1/completions", 200);
  m.observe_time_to_first_token(0.03);
  EngineMetrics e;
  e.requests_running = 2;
  e.prompt_tokens = 1000;
  e.prompt_tokens_cached = 250;
  e.preemptions = 7;
  e.kv_blocks_used = 12;
  const PrometheusSamples s = parse_prometheus_text(m.render(e));
  EXPECT_EQ(sample(s, "llama3_requests_running"), 2.0);
  EXPECT_EQ(sample(s, "llama3_prompt_tokens_total"), 1000.0);
  EXPECT_EQ(sample(s, "llama3_prompt_tokens_cached_total"), 250.0);
  EXPECT_EQ(sample(s, "llama3_preemptions_total"), 7.0);
  EXPECT_EQ(sample(s, "llama3_kv_blocks_used"), 12.0);
  EXPECT_EQ(sample(s, "llama3_prefix_cache_hit_rate"), 0.25);
  EXPECT_EQ(sample(s, "llama3_http_requests_total{endpoint=\"/v1/completions\",status=\"200\"}"), 1.0);
  EXPECT_EQ(sample(s, "llama3_time_to_first_token_seconds_bucket{le=\"+Inf\"}"), 1.0);
  EXPECT_EQ(sample(s, "llama3_no_such_metric"), std::nullopt);
}

TEST(PrometheusText, LabelsWithSpacesTimestampsAndSpecialValues) {
  const PrometheusSamples s = parse_prometheus_text(
      "# HELP a x\n# TYPE a gauge\n"
      "a{path=\"/x y\",q=\"say \\\"hi\\\"\"} 3 1700000000000\r\n"
      "b +Inf\n"
      "c NaN\n"
      "garbage\n"
      "d not_a_number\n");
  EXPECT_EQ(sample(s, "a{path=\"/x y\",q=\"say \\\"hi\\\"\"}"), 3.0);
  EXPECT_TRUE(std::isinf(*sample(s, "b")));
  EXPECT_TRUE(std::isnan(*sample(s, "c")));
  EXPECT_EQ(s.size(), 3u);
}

TEST(LoadPlan, IsDeterministicAndSharesThePrefix) {
  LoadOptions o;
  o.requests = 400;
  o.prompt_min = 5;
  o.prompt_max = 40;
  o.shared_prefix = 32;
  o.max_tokens = 16;
  o.cancel_fraction = 0.25;
  o.request_rate = 50.0;
  o.seed = 7;
  const std::vector<PlannedRequest> a = plan_requests(o);
  const std::vector<PlannedRequest> b = plan_requests(o);
  ASSERT_EQ(a.size(), 400u);
  int cancelled = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].prompt, b[i].prompt);
    EXPECT_EQ(a[i].arrival_s, b[i].arrival_s);
    ASSERT_GE(a[i].prompt.size(), 37u);
    ASSERT_LE(a[i].prompt.size(), 72u);
    EXPECT_TRUE(std::equal(a[i].prompt.begin(), a[i].prompt.begin() + 32, a[0].prompt.begin())) << i;
    EXPECT_EQ(a[i].max_tokens, 16);
    EXPECT_GE(a[i].cancel_after, 0);
    EXPECT_LE(a[i].cancel_after, 3);
    cancelled += a[i].cancel_after > 0;
    if (i > 0) {
      EXPECT_GE(a[i].arrival_s, a[i - 1].arrival_s);
    }
  }
  EXPECT_NEAR(cancelled, 100, 30);
  // Poisson arrivals at 50/s: 399 gaps of 20 ms on average.
  EXPECT_NEAR(a.back().arrival_s / 399.0, 0.02, 0.004);
  EXPECT_EQ(a[0].arrival_s, 0.0);

  o.seed = 8;
  EXPECT_NE(plan_requests(o)[0].prompt, a[0].prompt);
  o.request_rate = std::numeric_limits<double>::infinity();
  for (const PlannedRequest& p : plan_requests(o)) EXPECT_EQ(p.arrival_s, 0.0);
}

TEST(LoadPlan, RefusesOptionsOutOfRange) {
  LoadOptions o;
  o.prompt_min = 10;
  o.prompt_max = 5;
  EXPECT_THROW(plan_requests(o), std::runtime_error);
  o = LoadOptions();
  o.cancel_fraction = 1.5;
  EXPECT_THROW(plan_requests(o), std::runtime_error);
  EXPECT_EQ(normalize_base_url("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
  EXPECT_EQ(normalize_base_url("http://[::1]:80"), "http://[::1]:80");
  EXPECT_THROW(normalize_base_url("http://host:8080/v1"), std::runtime_error);
  EXPECT_THROW(normalize_base_url("127.0.0.1:8080"), std::runtime_error);
}

TEST(LoadSummary, ComputesVllmFiguresOverCompletedRequests) {
  LoadRun run;
  run.duration_s = 2.0;
  RequestRecord a;  // 5 tokens in 0.5 s after a 0.1 s first token: TPOT (0.5 - 0.1) / 4
  a.outcome = Outcome::completed;
  a.sent_s = 0.0;
  a.end_s = 0.5;
  a.ttft_s = 0.1;
  a.itl_s = {0.1, 0.1, 0.2};
  a.prompt_tokens = 100;
  a.cached_tokens = 64;
  a.output_tokens = 5;
  RequestRecord b = a;
  b.sent_s = 1.0;
  b.end_s = 1.3;
  b.ttft_s = 0.3;
  b.itl_s = {};
  b.output_tokens = 1;  // no TPOT from a single token
  RequestRecord cancelled = a;
  cancelled.outcome = Outcome::cancelled;
  RequestRecord failed;
  failed.outcome = Outcome::failed;
  run.records = {a, b, cancelled, failed, RequestRecord()};
  const LoadSummary s = summarize_run(run);
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.cancelled, 1);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.not_sent, 1);
  EXPECT_EQ(s.input_tokens, 200);
  EXPECT_EQ(s.cached_tokens, 128);
  EXPECT_EQ(s.output_tokens, 6);
  EXPECT_DOUBLE_EQ(s.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(s.output_throughput, 3.0);
  EXPECT_DOUBLE_EQ(s.total_token_throughput, 103.0);
  EXPECT_EQ(s.ttft_ms.count, 2u);
  EXPECT_NEAR(s.ttft_ms.mean, 200.0, 1e-9);
  EXPECT_EQ(s.tpot_ms.count, 1u);
  EXPECT_NEAR(s.tpot_ms.mean, 100.0, 1e-9);
  EXPECT_EQ(s.itl_ms.count, 3u);
  EXPECT_NEAR(s.itl_ms.max, 200.0, 1e-9);
  EXPECT_NEAR(s.e2el_ms.p50, 400.0, 1e-9);
}

}  // namespace
}  // namespace llama3::server
