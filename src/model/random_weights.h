#pragma once
#include <cstdint>

#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/precision.h"
#include "model/shard_plan.h"

namespace llama3::model {

// Deterministic random weights of the config's shapes (no files), the same for a given seed on
// any machine and thread count. Scales are chosen so the model behaves like a trained one in the
// ways tests need:
//  - matrices: uniform with std 1/sqrt(fan_in), so every projection keeps activations at unit
//    scale and q.k/sqrt(head_dim) has std ~1: attention is far from uniform, and a wrong RoPE
//    or q/k layout changes the output;
//  - embeddings (and the untied LM head): std 0.02, and the final norm's weights 5, so logits
//    have std ~0.1*sqrt(dim) (4.5 for 1B): peaked enough that greedy continuations differ by
//    prompt, soft enough to sample. Putting the scale in the final norm rather than in a tied
//    embedding matters: with embeddings of std 0.1 the input token's own row dominates the
//    tied LM head and greedy decoding just repeats the last token;
//  - other norms: 1.
// The values are generated in bf16 (the "checkpoint"), then each matrix is converted to the
// format `precision` gives it, one matrix at a time.
ModelWeights random_weights(const ModelConfig& config, uint64_t seed,
                            const PrecisionMap& precision = precision_mode("bf16"));

// One rank's share of the same model (shard_plan.h): each value is a function of its tensor and
// its index in the whole tensor, so every mesh computes the same model and no rank ever builds
// more than its slices.
ModelWeights random_weights(const ModelConfig& config, uint64_t seed, const PrecisionMap& precision,
                            const ShardPlan& shard);

}  // namespace llama3::model
