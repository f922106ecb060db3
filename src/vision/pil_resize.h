#pragma once
// Pillow's `Image.resize((width, height), Image.BILINEAR)` on an RGB image, reproduced bit for
// bit (Pillow 9.4, src/libImaging/Resample.c), because Meta's image transform for Llama 3.2
// Vision resizes with it (torchvision's F.resize on a PIL image calls exactly that) and the
// vision encoder was trained on its pixels. What "exactly" takes:
//  - a separable convolution: the horizontal pass first (only over the source rows the vertical
//    pass will read), its result rounded and clipped to uint8, then the vertical pass;
//  - a triangle filter whose support grows with the scale when downscaling (support = scale,
//    i.e. an antialiasing filter, not the 2-tap bilinear interpolation of OpenCV or of torch's
//    interpolate without antialias), centred on (i + 0.5) * scale;
//  - weights computed in double, normalized per output pixel, then turned into 22-bit fixed
//    point (round half away from zero) and accumulated in int32 from 1 << 21 (rounding);
//  - no `reducing_gap` box-reduction step (Image.resize only does one when asked, and neither
//    torchvision nor Meta asks), and no work at all when the size does not change.
#include <cstdint>

#include "vision/image_decode.h"

namespace llama3::vision {

// Throws llama3::Error when a target side is not positive (Pillow: "height and width must be > 0").
RgbImage pil_resize_bilinear(const RgbImage& image, int64_t width, int64_t height);

}  // namespace llama3::vision
