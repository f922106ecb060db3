#pragma once
// Llama models in GGUF files (llama.cpp's format): the config from the `llama.*` keys, the
// tensors under llama.cpp's names, converted to the kernels' formats by the precision map.
// GGUF stores q/k rows in the interleaved-pair RoPE order of Meta's checkpoints (llama.cpp's
// converter undoes Hugging Face's permutation), which is the engine's own: no reordering.
#include <cstdint>
#include <filesystem>
#include <optional>

#include "io/gguf_file.h"
#include "model/checkpoint_loader.h"
#include "model/tensor_names.h"

namespace llama3::model {

// Throws naming the key when the file is not a Llama GGUF or a value is missing or inconsistent.
ModelConfig config_from_gguf(const io::GgufFile& file);

// `share`: one rank's share of a mesh (checkpoint_loader.h's load_checkpoint).
LoadedCheckpoint load_gguf_checkpoint(const std::filesystem::path& file, std::optional<int64_t> layers,
                                      const PrecisionMap& precision, Share share = {});

// llama.cpp's tensor names.
std::string gguf_layer_tensor_name(int64_t layer, LayerTensor t);
inline constexpr const char* kGgufEmbed = "token_embd.weight";
inline constexpr const char* kGgufOutput = "output.weight";
inline constexpr const char* kGgufNorm = "output_norm.weight";
inline constexpr const char* kGgufRopeFreqs = "rope_freqs.weight";

// The per-frequency divisors Llama 3.1 scaling gives (what llama.cpp's converter writes as
// rope_freqs.weight), from the config's rope_scaling.
std::vector<double> llama3_rope_divisors(const ModelConfig& config);

}  // namespace llama3::model
