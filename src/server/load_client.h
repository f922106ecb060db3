#pragma once
// A load generator for an OpenAI-compatible server (`llama3 bench-serve`, as vLLM's
// `vllm bench serve`): plans requests (random prompt lengths of token ids, an optional shared
// prefix, Poisson arrivals, some to be abandoned mid-stream), sends them streamed with at most
// C in flight (one thread and connection each), times every text event and validates every
// answer. The run stops by itself at a deadline.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace llama3::server {

struct LoadTarget {
  std::string base_url;  // scheme://host[:port]
  std::string api_key;   // sent as a bearer token when set
  std::string model;     // the request's "model"; empty: none sent
};

// Checks `url` is scheme://host[:port] (one trailing '/' allowed) and returns it without the
// slash; throws naming what is wrong.
std::string normalize_base_url(const std::string& url);

struct LoadOptions {
  int64_t requests = 100;
  int concurrency = 16;  // requests in flight at most
  double request_rate = std::numeric_limits<double>::infinity();  // per second; inf: all at once
  // A prompt is the shared prefix, then a random part of [min, max] tokens (vLLM's random
  // dataset: --random-prefix-len, then --random-input-len).
  int64_t prompt_min = 64;
  int64_t prompt_max = 256;
  int64_t shared_prefix = 0;
  int64_t max_tokens = 64;
  double cancel_fraction = 0.0;  // share of requests that close the connection mid-stream
  uint64_t seed = 0;
  double timeout_s = 600.0;  // the run's deadline
  bool ignore_eos = true;    // every completion runs to max_tokens, so runs compare
};

// Throws naming the option that is out of range.
void validate(const LoadOptions& o);

struct PlannedRequest {
  std::vector<int32_t> prompt;  // token ids (/v1/completions takes them as "prompt")
  int64_t max_tokens = 0;
  int cancel_after = 0;    // close the connection after this many text events; 0: never
  double arrival_s = 0.0;  // the earliest it is sent, from the run's start
  uint64_t seed = 0;       // the sampler's
};

// Deterministic for a seed: the same prompts, arrivals and cancellations every run.
std::vector<PlannedRequest> plan_requests(const LoadOptions& o);

enum class Outcome { completed, failed, cancelled, not_sent };
const char* outcome_name(Outcome o);

struct RequestRecord {
  Outcome outcome = Outcome::not_sent;
  std::string error;  // failed: why (HTTP status, connection error, the malformed part)
  int http_status = 0;
  double sent_s = 0.0;  // from the run's start
  double end_s = 0.0;
  std::optional<double> ttft_s;  // time to the first text event
  std::vector<double> itl_s;     // gaps between consecutive text events
  int64_t prompt_tokens = 0;     // the server's usage (the plan's count until it reports)
  int64_t cached_tokens = 0;     // prompt tokens the server served from its prefix cache
  int64_t output_tokens = 0;     // the server's usage; text events of a cancelled request
  std::string finish_reason;
};

struct LoadRun {
  std::vector<RequestRecord> records;  // in plan order
  double duration_s = 0.0;             // start to the last request's end
  bool deadline_hit = false;
};

LoadRun run_load(const LoadTarget& target, const LoadOptions& options, const std::vector<PlannedRequest>& plan);

// The server's counters (GET /metrics), for llama3's own metric names.
struct ServerCounters {
  double prompt_tokens = 0;
  double prompt_tokens_cached = 0;
  double generation_tokens = 0;
  double preemptions = 0;
  double requests_running = 0;
  double requests_waiting = 0;
  double kv_blocks_used = 0;
  double kv_blocks_total = 0;
  double logits_checked = 0;    // serve --check_finite: rows checked for NaN/Inf
  double logits_nonfinite = 0;  // and those that held one
  double resident_bytes = 0;    // the server's RSS
  double heap_in_use = 0;       // C heap bytes held by the program (0 where the server does not say)
  double heap_free_held = 0;    // C heap bytes freed but kept by its allocator
  bool idle() const { return requests_running == 0 && requests_waiting == 0 && kv_blocks_used == 0; }
};

// nullopt when /metrics is missing or is not llama3's (another server).
std::optional<ServerCounters> read_server_counters(const LoadTarget& target);

// The first "id" of GET /v1/models; throws when the server cannot be reached.
std::string first_model_id(const LoadTarget& target);

}  // namespace llama3::server
