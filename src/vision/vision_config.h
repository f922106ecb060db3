#pragma once
// The shape of Llama 3.2 Vision's image encoder. Meta's reference code hard-codes the released
// model's values (the defaults below); Hugging Face's config.json carries them in vision_config.
#include <cstdint>
#include <vector>

namespace llama3::vision {

struct VisionConfig {
  int64_t width = 0;           // 1280; 0: a text-only model
  int64_t layers = 32;         // the local transformer
  int64_t global_layers = 8;   // the gated global transformer
  int64_t heads = 16;
  int64_t ffn_dim = 5120;      // the MLP's hidden width (4 x width)
  int64_t patch_size = 14;
  int64_t tile_size = 560;     // Meta's vision_chunk_size
  int64_t max_tiles = 4;       // Meta's vision_max_num_chunks
  // The local layers whose INPUT joins the output (Meta's return_intermediate): the encoder's
  // output per token is [final, intermediate 0, ...] with the intermediates interleaved per
  // feature (stacked on the last axis, then flattened).
  std::vector<int64_t> intermediate_layers = {3, 7, 15, 23, 30};
  double norm_eps = 1e-5;      // LayerNorm
  int64_t output_dim = 0;      // the projection's width: the text model's dim

  bool enabled() const { return width > 0; }
  int64_t head_dim() const { return width / heads; }
  int64_t grid() const { return tile_size / patch_size; }
  int64_t tokens_per_tile() const { return grid() * grid() + 1; }  // patches + the class token
  // Tokens per tile in the transformers: padded to a multiple of 8 (as the reference does; the
  // padding tokens take part in attention, so they change the result).
  int64_t padded_tokens_per_tile() const { return (tokens_per_tile() + 7) / 8 * 8; }
  int64_t features() const { return width * (1 + static_cast<int64_t>(intermediate_layers.size())); }

  // Throws llama3::Error naming what is inconsistent.
  void validate() const;
};

}  // namespace llama3::vision
