#pragma once
// The figures `vllm bench serve` reports, computed from a load run's records with its
// definitions, so that ours and vLLM's compare: throughput over the run's duration, and
// latencies over the completed requests (a cancelled or failed request has no full latency).
#include <cstdint>
#include <nlohmann/json.hpp>

#include "server/latency_stats.h"
#include "server/load_client.h"

namespace llama3::server {

struct LoadSummary {
  int64_t requests = 0;
  int64_t completed = 0;
  int64_t failed = 0;
  int64_t cancelled = 0;
  int64_t not_sent = 0;
  double duration_s = 0.0;
  int64_t input_tokens = 0;   // prompt tokens of the completed requests
  int64_t output_tokens = 0;  // generated tokens of the completed requests
  int64_t cached_tokens = 0;  // of input_tokens, served from the server's prefix cache (usage)
  double request_throughput = 0.0;  // completed requests / s
  double output_throughput = 0.0;   // output tokens / s
  double total_token_throughput = 0.0;
  // Milliseconds. TTFT: sent to the first text event. TPOT: (latency - TTFT) / (tokens - 1) per
  // request of 2 tokens or more. ITL: every gap between text events (a server that sends several
  // tokens in one event shows fewer, longer gaps). E2EL: sent to the last byte.
  LatencySummary ttft_ms, tpot_ms, itl_ms, e2el_ms;
};

LoadSummary summarize_run(const LoadRun& run);

nlohmann::json to_json(const LatencySummary& s);
nlohmann::json to_json(const LoadSummary& s);

}  // namespace llama3::server
