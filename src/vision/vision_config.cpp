#include "vision/vision_config.h"

#include <algorithm>

#include "core/error.h"

namespace llama3::vision {

void VisionConfig::validate() const {
  if (!enabled()) return;
  check(layers > 0 && global_layers >= 0 && heads > 0 && width % heads == 0,
        "vision encoder: width {} does not split into {} heads (layers {}, global {})", width, heads, layers,
        global_layers);
  check(patch_size > 0 && tile_size > 0 && tile_size % patch_size == 0,
        "vision encoder: tiles of {} px do not split into patches of {} px", tile_size, patch_size);
  check(max_tiles >= 1 && max_tiles <= 64, "vision encoder: max_tiles {} is outside 1..64", max_tiles);
  check(ffn_dim > 0 && output_dim > 0 && norm_eps > 0.0, "vision encoder: ffn {} / output width {} / eps {} must be positive",
        ffn_dim, output_dim, norm_eps);
  check(std::is_sorted(intermediate_layers.begin(), intermediate_layers.end()) &&
            std::adjacent_find(intermediate_layers.begin(), intermediate_layers.end()) == intermediate_layers.end(),
        "vision encoder: the intermediate layers must be increasing");
  for (int64_t l : intermediate_layers) {
    check(l >= 0 && l < layers, "vision encoder: intermediate layer {} is outside the {} local layers", l, layers);
  }
}

}  // namespace llama3::vision
