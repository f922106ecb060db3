#pragma once
// The server's Prometheus metrics: what it measures itself (HTTP requests by status, latency
// histograms as clients see them) beside the engine's counters, rendered in the text
// exposition format (version 0.0.4) for GET /metrics. Thread-safe.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llama3/engine.h"

namespace llama3::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);  // upper bounds, ascending; +Inf is implicit
  void observe(double value);
  // The _bucket (cumulative), _sum and _count lines of `name`.
  void render(std::string& out, std::string_view name, std::string_view help) const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();

  void count_request(std::string_view endpoint, int status);
  void observe_time_to_first_token(double seconds) { ttft_.observe(seconds); }
  void observe_inter_token_latency(double seconds) { itl_.observe(seconds); }
  void observe_request_duration(double seconds) { e2e_.observe(seconds); }

  std::string render(const EngineMetrics& engine) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram ttft_;
  Histogram itl_;
  Histogram e2e_;
};

}  // namespace llama3::server
