#pragma once
// The weights of Llama 3.2 Vision's image encoder and projection, in one internal layout whatever
// the checkpoint: matrices bf16 [out][in] (y = W x), vectors fp32. Meta's files hold the tile
// embeddings as a [max_tiles][max_tiles] grid, Hugging Face's per aspect-ratio id; here they are
// per canvas (tiles_h x tiles_w), which holds either without loss (a fine-tuned HF model may give
// the same tile different embeddings under different canvases).
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/weight_format.h"
#include "vision/vision_config.h"

namespace llama3::vision {

// A matrix of the encoder: bf16 [rows][cols] as loaded, or (quantize_vision_matrices) 8-bit
// blocks in the integer kernels' packed layout (kernels/quant_pack.h), values then dropped.
struct Bf16Matrix {
  std::vector<uint16_t> values;  // [rows][cols]; empty once packed
  int64_t rows = 0, cols = 0;
  kernels::WeightFormat format = kernels::WeightFormat::BF16;
  std::vector<std::byte> packed;  // Q8_0, packed_bytes(Q8_0, rows, cols)
};

struct LayerNormWeights {
  std::vector<float> weight, bias;  // [width]
};

struct VisionLayerWeights {
  LayerNormWeights ln_1, ln_2;
  Bf16Matrix wq, wk, wv, wo;  // [width][width], no biases
  Bf16Matrix fc1, fc2;        // [ffn][width], [width][ffn]
  std::vector<float> fc1_bias, fc2_bias;
  // The global layers' gates (tanh applied when used); the local layers have none (1).
  bool gated = false;
  float gate_attn = 0.0f, gate_ffn = 0.0f;
};

// Embeddings of the tiles of one canvas, for all max_tiles tiles the encoder runs: the canvas's
// tiles in row-major order, then the empty ones' (zero in Meta's files and in Hugging Face's as
// converted; a fine-tuned Hugging Face model may have others there, and they would count).
struct CanvasEmbedding {
  int64_t tiles_h = 0, tiles_w = 0;
  std::vector<float> values;  // [max_tiles][rows][width]
};

struct VisionWeights {
  Bf16Matrix patch_embedding;           // [width][3 * patch * patch], (channel, y, x) order
  std::vector<float> class_embedding;   // [width]
  std::vector<float> positional;        // [tokens_per_tile][width]
  std::vector<CanvasEmbedding> tile_positional;  // rows = tokens_per_tile
  float tile_positional_gate = 0.0f;
  std::vector<CanvasEmbedding> pre_tile, post_tile;  // rows = 1
  float pre_tile_gate = 0.0f, post_tile_gate = 0.0f;
  LayerNormWeights ln_pre, ln_post;
  std::vector<VisionLayerWeights> layers, global_layers;
  Bf16Matrix projection;                // [output_dim][features]
  std::vector<float> projection_bias;   // [output_dim]

  // The canvas's embeddings; throws when the weights have none for it.
  static const CanvasEmbedding& find(const std::vector<CanvasEmbedding>& all, int64_t tiles_h, int64_t tiles_w,
                                     const char* what);
  // Throws naming the first tensor whose size does not match the config.
  void validate(const VisionConfig& config) const;
};

// Converts every matrix whose width is whole 32-column blocks (all but the patch embedding's 588)
// to 8-bit blocks (ggml's Q8_0 rounding), for the int8 kernels: the precision modes that
// quantize the text model's attention (performance, accuracy) run the encoder this way, bf16 keeps
// it as loaded. Never 4 bits: the encoder's 40 layers feed every cross-attention layer.
void quantize_vision_matrices(VisionWeights& weights);

// Deterministic random weights of the config's shapes: matrices uniform with std 1/sqrt(fan in),
// embeddings std 0.02 x sqrt(width) so they matter next to the patches, gates uniform in
// [-1, 1] (a released model's are non-zero; zero gates would hide a wrong embedding).
VisionWeights random_vision_weights(const VisionConfig& config, uint64_t seed);

}  // namespace llama3::vision
