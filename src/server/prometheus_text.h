#pragma once
// Reads the samples of a Prometheus text exposition (what GET /metrics returns) for a client
// that compares counters before and after a run (`llama3 bench-serve`).
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace llama3::server {

// Sample values by series as written: `name` or `name{label="value",...}` (labels in the
// server's order). Comments and lines that are not samples are skipped; a trailing timestamp
// is ignored.
using PrometheusSamples = std::map<std::string, double>;

PrometheusSamples parse_prometheus_text(std::string_view text);

// The value of a series, if the exposition has it.
std::optional<double> sample(const PrometheusSamples& samples, const std::string& series);

}  // namespace llama3::server
