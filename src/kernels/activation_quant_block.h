#pragma once
// The scalar forms of the two comparisons the SIMD activation quantizers use, so that the
// reference takes the same branch as vmaxps/vminps on every input (the second operand wins when
// the comparison is false, NaN included): bitwise equal results, and no undefined float-to-int
// conversion of a NaN. (With NaN inputs the block maximum depends on the reduction order, so
// only finite inputs give bitwise equal results across ISAs.)
namespace llama3::kernels {

inline float max_like_simd(float a, float b) { return a > b ? a : b; }

// x / d clamped to the int8 range the kernels use ([-127, 127]: |q| never reaches 128, which
// keeps the AVX2 sign trick and vpmaddubsw free of overflow).
inline float clamp_q(float v) {
  v = v < 127.0f ? v : 127.0f;
  return v > -127.0f ? v : -127.0f;
}

}  // namespace llama3::kernels
