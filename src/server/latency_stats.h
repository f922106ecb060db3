#pragma once
// Summary statistics of a sample of latencies, as `vllm bench serve` reports them: mean,
// standard deviation, median and percentiles. Percentiles interpolate linearly between the two
// nearest ranks (numpy's default), so figures compare with vLLM's for the same sample.
#include <cstddef>
#include <vector>

namespace llama3::server {

struct LatencySummary {
  size_t count = 0;
  double mean = 0.0;
  double stdev = 0.0;  // population standard deviation (numpy's std)
  double min = 0.0;
  double p50 = 0.0;
  double p90 = 0.0;
  double p99 = 0.0;
  double max = 0.0;
};

// The q-th percentile (0..100) of `sorted` (ascending); 0 for an empty sample.
double percentile(const std::vector<double>& sorted, double q);

// Everything zero for an empty sample (no request got that far).
LatencySummary summarize(std::vector<double> values);

}  // namespace llama3::server
