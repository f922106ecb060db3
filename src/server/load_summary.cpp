#include "server/load_summary.h"

namespace llama3::server {

LoadSummary summarize_run(const LoadRun& run) {
  LoadSummary s;
  s.requests = static_cast<int64_t>(run.records.size());
  s.duration_s = run.duration_s;
  std::vector<double> ttft, tpot, itl, e2el;
  for (const RequestRecord& r : run.records) {
    switch (r.outcome) {
      case Outcome::failed: ++s.failed; continue;
      case Outcome::cancelled: ++s.cancelled; continue;
      case Outcome::not_sent: ++s.not_sent; continue;
      case Outcome::completed: ++s.completed; break;
    }
    s.input_tokens += r.prompt_tokens;
    s.output_tokens += r.output_tokens;
    s.cached_tokens += r.cached_tokens;
    const double latency = r.end_s - r.sent_s;
    e2el.push_back(latency * 1e3);
    if (r.ttft_s) {
      ttft.push_back(*r.ttft_s * 1e3);
      if (r.output_tokens > 1) tpot.push_back((latency - *r.ttft_s) / static_cast<double>(r.output_tokens - 1) * 1e3);
    }
    for (double gap : r.itl_s) itl.push_back(gap * 1e3);
  }
  if (s.duration_s > 0) {
    s.request_throughput = static_cast<double>(s.completed) / s.duration_s;
    s.output_throughput = static_cast<double>(s.output_tokens) / s.duration_s;
    s.total_token_throughput = static_cast<double>(s.input_tokens + s.output_tokens) / s.duration_s;
  }
  s.ttft_ms = summarize(std::move(ttft));
  s.tpot_ms = summarize(std::move(tpot));
  s.itl_ms = summarize(std::move(itl));
  s.e2el_ms = summarize(std::move(e2el));
  return s;
}

nlohmann::json to_json(const LatencySummary& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"std", s.stdev}, {"min", s.min}, {"p50", s.p50},
          {"p90", s.p90},     {"p99", s.p99},   {"max", s.max}};
}

nlohmann::json to_json(const LoadSummary& s) {
  return {{"requests", s.requests},
          {"completed", s.completed},
          {"failed", s.failed},
          {"cancelled", s.cancelled},
          {"not_sent", s.not_sent},
          {"duration_s", s.duration_s},
          {"total_input_tokens", s.input_tokens},
          {"total_output_tokens", s.output_tokens},
          {"cached_input_tokens", s.cached_tokens},
          {"request_throughput", s.request_throughput},
          {"output_throughput", s.output_throughput},
          {"total_token_throughput", s.total_token_throughput},
          {"ttft_ms", to_json(s.ttft_ms)},
          {"tpot_ms", to_json(s.tpot_ms)},
          {"itl_ms", to_json(s.itl_ms)},
          {"e2el_ms", to_json(s.e2el_ms)}};
}

}  // namespace llama3::server
