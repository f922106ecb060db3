#include "server/metrics.h"

#include <fmt/core.h>

#include <algorithm>

#include "runtime/rss.h"

namespace llama3::server {
namespace {

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void single(std::string& out, std::string_view name, std::string_view type, std::string_view help, double value) {
  header(out, name, type, help);
  out += fmt::format("{} {}\n", name, value);
}

// Label values are our own route names and status codes, but escape as the format requires.
std::string escape_label(std::string_view v) {
  std::string s;
  for (char c : v) {
    if (c == '\\' || c == '"') s += '\\';
    if (c == '\n') {
      s += "\\n";
      continue;
    }
    s += c;
  }
  return s;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t bucket = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view help) const {
  std::lock_guard lock(mutex_);
  header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name, sum_, name, count_);
}

// Buckets as vLLM's, so dashboards made for it read ours.
ServerMetrics::ServerMetrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
             80.0}),
      itl_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}),
      e2e_({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0}) {}

void ServerMetrics::count_request(std::string_view endpoint, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(endpoint), status}];
}

std::string ServerMetrics::render(const EngineMetrics& m) const {
  std::string out;
  header(out, "llama3_http_requests_total", "counter", "HTTP requests by endpoint and status code.");
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, count] : requests_) {
      out += fmt::format("llama3_http_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", escape_label(key.first),
                         key.second, count);
    }
  }
  single(out, "llama3_prompt_tokens_total", "counter", "Prompt tokens of the requests the engine served.",
         static_cast<double>(m.prompt_tokens));
  single(out, "llama3_prompt_tokens_cached_total", "counter", "Prompt tokens served from the prefix cache.",
         static_cast<double>(m.prompt_tokens_cached));
  single(out, "llama3_generation_tokens_total", "counter", "Tokens generated.", static_cast<double>(m.generated_tokens));
  single(out, "llama3_prefix_cache_hit_rate", "gauge", "Prompt tokens served from the prefix cache / prompt tokens.",
         m.prompt_tokens > 0 ? static_cast<double>(m.prompt_tokens_cached) / static_cast<double>(m.prompt_tokens) : 0.0);
  single(out, "llama3_requests_waiting", "gauge", "Requests queued for the running batch.",
         static_cast<double>(m.requests_waiting));
  single(out, "llama3_requests_running", "gauge", "Requests in the running batch.",
         static_cast<double>(m.requests_running));
  header(out, "llama3_engine_requests_total", "counter", "Requests the engine ended, by outcome.");
  out += fmt::format("llama3_engine_requests_total{{outcome=\"finished\"}} {}\n", m.requests_finished);
  out += fmt::format("llama3_engine_requests_total{{outcome=\"cancelled\"}} {}\n", m.requests_cancelled);
  out += fmt::format("llama3_engine_requests_total{{outcome=\"failed\"}} {}\n", m.requests_failed);
  single(out, "llama3_preemptions_total", "counter", "Requests preempted when the KV pool ran out.",
         static_cast<double>(m.preemptions));
  single(out, "llama3_kv_blocks_total", "gauge", "KV cache blocks in the pool.", static_cast<double>(m.kv_blocks_total));
  single(out, "llama3_kv_blocks_used", "gauge", "KV cache blocks held by running requests.",
         static_cast<double>(m.kv_blocks_used));
  single(out, "llama3_kv_blocks_cached", "gauge", "Free KV cache blocks holding a reusable prefix.",
         static_cast<double>(m.kv_blocks_cached));
  single(out, "llama3_kv_cache_usage_ratio", "gauge", "KV cache blocks used / total.",
         m.kv_blocks_total > 0 ? static_cast<double>(m.kv_blocks_used) / static_cast<double>(m.kv_blocks_total) : 0.0);
  single(out, "llama3_engine_steps_total", "counter", "Scheduler steps (forward passes over the batch).",
         static_cast<double>(m.steps));
  single(out, "llama3_logits_checked_total", "counter",
         "Rows of logits checked for NaN/Inf before sampling (serve --check_finite).",
         static_cast<double>(m.logits_checked));
  single(out, "llama3_logits_nonfinite_total", "counter",
         "Checked rows of logits that held NaN/Inf (each failed its request).", static_cast<double>(m.logits_nonfinite));
  // The process's memory, so a long run shows whether it grows, and whether growth is in bytes the
  // program holds (a leak) or in freed bytes the allocator keeps (fragmentation).
  single(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         static_cast<double>(runtime::current_rss_bytes()));
  if (const std::optional<runtime::HeapUsage> heap = runtime::heap_usage()) {
    single(out, "llama3_heap_in_use_bytes", "gauge", "C heap bytes allocated and not freed (glibc mallinfo2).",
           static_cast<double>(heap->in_use));
    single(out, "llama3_heap_free_held_bytes", "gauge", "C heap bytes freed but held by the allocator.",
           static_cast<double>(heap->free_held));
  }
  ttft_.render(out, "llama3_time_to_first_token_seconds", "Time from a request's arrival to its first token.");
  itl_.render(out, "llama3_inter_token_latency_seconds", "Time between consecutive tokens of a request.");
  e2e_.render(out, "llama3_request_duration_seconds", "Time from a request's arrival to its last token.");
  return out;
}

}  // namespace llama3::server
