#pragma once
// RoPE frequencies with Llama 3.1's scaling, and per-position cos/sin.
#include <cstdint>
#include <vector>

#include "model/model_config.h"

namespace llama3::model {

// freq_i = theta^(-2i/head_dim), i < head_dim/2, then Llama 3.1 scaling: wavelengths shorter
// than original/high_freq_factor are kept, longer than original/low_freq_factor are divided by
// the factor, and the band between is interpolated smoothly. Computed in double.
std::vector<double> rope_frequencies(const ModelConfig& config);

// cos/sin of pos * freq_i (angles in double: at position 131072 an fp32 product would be off by
// up to ~0.008 rad).
void rope_cos_sin(const std::vector<double>& freqs, int64_t pos, float* cos, float* sin);

}  // namespace llama3::model
