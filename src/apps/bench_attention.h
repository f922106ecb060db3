#pragma once
// The attention part of `llama3 bench --attention`: the attention kernel alone on the model's
// own cache at the benchmark's context, against the machine's limits measured in the same run:
//  - decode (batch 1): every layer's KV cache read once per token, from memory (the caches are
//    scrubbed before each call); time and GB/s per layer against the read bandwidth (decode
//    attention is bandwidth bound at long context);
//  - prefill: the last `chunk` positions of the context as one prefill chunk against all of it
//    (4 * head_dim flops per query head and visible key), GFLOP/s against the fp32 FMA peak.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/bench_measure.h"
#include "model/llama_model.h"
#include "runtime/sequence_runner.h"

namespace llama3::apps {

struct AttentionRun {
  int64_t context = 0;
  int64_t chunk = 0;
  std::string kv_cache;
  double kv_bytes_per_layer = 0;
  double prefill_flops = 0;
  std::vector<Stats> decode;  // per layer: KV bytes read per second
  Stats prefill;              // flops per second
};

// Measures on sequence 0 of `runner` (its cache filled to the context wanted).
AttentionRun measure_attention(const model::LlamaModel& m, const runtime::SequenceRunner& runner, int64_t chunk,
                               int reps, const Hygiene& hygiene);

// Prints the figures against `limits` and returns them as JSON.
nlohmann::json print_attention(const AttentionRun& run, const Limits& limits);

}  // namespace llama3::apps
