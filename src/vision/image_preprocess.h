#pragma once
// Meta's image transform for Llama 3.2 Vision, reproduced exactly: llama-models,
// models/llama3/multimodal/image_transform.py, VariableSizeImageTransform(size=tile_size) called
// as the model calls it (models/llama3/multimodal/model.py: max_num_chunks = max_tiles,
// resize_to_max_canvas=False, normalize_img=True). Steps:
//  1. canvases: every (tiles_w, tiles_h) with tiles_w * tiles_h <= max_tiles, times tile_size;
//  2. best fit (get_best_fit): per canvas the scale min(canvas_w / W, canvas_h / H) in float32
//     (torch divides int64 tensors into float32); if any scale is >= 1 take the smallest such
//     (the least upscaling, often exactly 1), else the largest (the least downscaling); among
//     canvases with exactly that scale the one of least area, the first in Meta's list on a tie;
//  3. resize without distortion, upscaling limited to tile_size: the target is
//     (min(max(W, T), canvas_w), min(max(H, T), canvas_h)); the side with the smaller double
//     scale fills its target and the other is floor(side * scale) (Python's float arithmetic);
//     the resize is Pillow's BILINEAR (pil_resize.h), skipped when the size is unchanged;
//  4. pad: pasted at the top-left of a black (0, 0, 0) canvas (before normalization, so the
//     padding normalizes to -mean/std, not to 0);
//  5. to_tensor and normalize in float32: (v / 255 - mean[c]) / std[c] with CLIP's
//     mean (0.48145466, 0.4578275, 0.40821073) and std (0.26862954, 0.26130258, 0.27577711);
//  6. split into tiles, row-major: tile r * tiles_w + c is canvas rows [r*T, (r+1)*T) and
//     columns [c*T, (c+1)*T), each [3][T][T].
//
// Aspect ratio conventions (what the encoder and checkpoint loaders need):
//  - Meta returns `ar = (ratio_h, ratio_w)`, i.e. ar[0] = tiles_h (tiles down the image) and
//    ar[1] = tiles_w (tiles across): `ratio_w, ratio_h = (best_resolution[0] // self.size,
//    best_resolution[1] // self.size)` ... `ar = (ratio_h, ratio_w)`, where best_resolution is
//    (width, height) as get_best_fit, _pad and resize read it (find_supported_resolutions' own
//    docstring calls the pairs (height, width); the set is symmetric so only the reading
//    matters). The encoder indexes its tile embeddings as `h, w = arx; embed[:h, :w]`, and the
//    tiles come in that row-major order. So ImageTiles{tiles_h, tiles_w} = Meta's ar.
//  - Hugging Face's aspect_ratio_id (MllamaImageProcessor.convert_aspect_ratios_to_ids) is
//    1 + the index of (tiles_h, tiles_w) in get_all_supported_aspect_ratios(max_tiles) =
//    [(h, w) for h in 1..N for w in 1..N if h*w <= N] (N = 4: (1,1) (1,2) (1,3) (1,4) (2,1)
//    (2,2) (3,1) (4,1) -> ids 1..8; 0 is batch padding), and the converter
//    (convert_mllama_weights_to_hf.py, pre_compute_positional_embedding) fills row id of the
//    precomputed embeddings with Meta's embedding[:h, :w] for that (h, w).
//    supported_canvases() lists the pairs in that order and hf_aspect_ratio_id() computes the id.
//  - Differences from HF's processor, which we do not follow: it multiplies by 1/255 instead of
//    dividing (126 of 256 values differ in the last bit), sizes the resize with its own
//    get_image_size_fit_to_canvas and float64 scales, and its convert_to_rgb composites alpha
//    onto white (Meta's convert("RGB") drops it; see image_decode.h).
#include <cstdint>
#include <utility>
#include <vector>

#include "vision/image_decode.h"

namespace llama3::vision {

struct ImageTiles {
  int64_t tiles_h = 0, tiles_w = 0;  // the canvas in tiles: Meta's ar = (tiles_h, tiles_w)
  int64_t tile_size = 0;
  std::vector<float> pixels;  // [tiles_h*tiles_w][3][tile_size][tile_size], normalized, row-major tiles
};

// Where an image goes on its canvas (steps 1-3).
struct CanvasPlan {
  int64_t tiles_h = 0, tiles_w = 0;
  int64_t resized_width = 0, resized_height = 0;  // the image after the resize, at the canvas's top-left
};

// Every (tiles_h, tiles_w) with tiles_h * tiles_w <= max_tiles, in Hugging Face's order
// (tiles_h outer, tiles_w inner), so that index + 1 is HF's aspect_ratio_id. (Meta's own list,
// find_supported_resolutions, has another order; the selection does not depend on it.)
std::vector<std::pair<int64_t, int64_t>> supported_canvases(int64_t max_tiles);

// HF's aspect_ratio_id of a canvas: 1 + its index in supported_canvases(max_tiles).
int64_t hf_aspect_ratio_id(int64_t tiles_h, int64_t tiles_w, int64_t max_tiles);

// Steps 1-3 for an image of width x height. Throws llama3::Error on bad arguments, and for an
// image so elongated that one side would resize to 0 pixels (Pillow refuses that too).
CanvasPlan plan_canvas(int64_t width, int64_t height, int64_t tile_size, int64_t max_tiles);

// Steps 1-4: the uint8 canvas (tiles_w*T wide, tiles_h*T high), bit-identical to Meta's PIL image
// before to_tensor.
RgbImage resize_and_pad(const RgbImage& image, int64_t tile_size, int64_t max_tiles);

// All six steps: what Meta's transform returns, as float32.
ImageTiles preprocess_image(const RgbImage& image, int64_t tile_size, int64_t max_tiles);

}  // namespace llama3::vision
