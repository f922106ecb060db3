#pragma once
// The attention part of `llama3 bench --attention`: the attention kernel alone on the model's
// own cache at the benchmark's context, against the machine's limits measured in the same run:
//  - decode (batch 1): every layer's KV cache read once per token; time and GB/s per layer
//    against the read bandwidth (decode attention is bandwidth bound at long context);
//  - prefill: the last `chunk` positions of the context as one prefill chunk against all of it
//    (4 * head_dim flops per query head and visible key), GFLOP/s against the fp32 FMA peak.
#include <functional>
#include <nlohmann/json.hpp>

#include "model/llama_model.h"
#include "runtime/sequence_runner.h"

namespace llama3::apps {

// Repeats a rate measurement (higher is better) under the benchmark's hygiene: {best, median}.
using RateMeasure = std::function<std::pair<double, double>(const std::function<double()>&)>;

nlohmann::json bench_attention(const model::LlamaModel& m, const runtime::SequenceRunner& runner, int64_t chunk,
                               double bandwidth, double fma_peak_gflops, const RateMeasure& measure);

}  // namespace llama3::apps
