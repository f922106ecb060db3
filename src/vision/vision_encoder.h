#pragma once
// Llama 3.2 Vision's image encoder: an image's tiles in, its vision tokens projected to the text
// width out (what the text decoder's cross-attention layers attend to). The math follows Meta's
// reference (llama-models, models/llama3/multimodal/model.py, VisionEncoder), including what
// looks incidental but changes the result:
//  - every image runs as max_tiles tiles: the tiles beyond its canvas are zero pixels, and they
//    and each tile's padding tokens (to a multiple of 8) take part in attention as keys; only
//    pairs of two such tokens are masked out;
//  - the local transformer attends over all tiles of the image at once, not tile by tile;
//  - the intermediate outputs are the INPUTS of the listed local layers, interleaved per feature.
// Only the real tiles' tokens come out: the text side masks the others exactly.
#include <cstdint>
#include <span>
#include <vector>

#include "vision/vision_config.h"
#include "vision/vision_weights.h"

namespace llama3::vision {

struct EncodedImage {
  int64_t tiles = 0;            // tiles_h * tiles_w
  int64_t tokens_per_tile = 0;  // patches + 1
  std::vector<float> tokens;    // [tiles][tokens_per_tile][output_dim]
};

// `pixels`: [tiles_h * tiles_w][3][tile_size][tile_size], normalized (image_preprocess.h).
// Throws llama3::Error on a canvas of more than max_tiles tiles or a wrong pixel count.
EncodedImage encode_image(const VisionConfig& config, const VisionWeights& weights, std::span<const float> pixels,
                          int64_t tiles_h, int64_t tiles_w);

}  // namespace llama3::vision
