#pragma once
// The scalar "vector" (one lane) of the shared kernel loops: the portable reference. Its fma is
// a fused multiply-add, as the SIMD ones are, so loops written on these traits give bitwise the
// same results on every ISA.
#include <bit>
#include <cmath>
#include <cstdint>

namespace llama3::kernels {

struct ScalarLane {
  using Vec = float;
  static constexpr int64_t kWidth = 1;
  static float zero() { return 0.0f; }
  static float load(const float* p) { return *p; }
  static float load(const uint16_t* p) { return std::bit_cast<float>(static_cast<uint32_t>(*p) << 16); }  // bf16
  static float load(const int8_t* p) { return static_cast<float>(*p); }
  static float fma(float a, float b, float c) { return std::fma(a, b, c); }
  static float set1(float v) { return v; }
  static void store(float* p, float v) { *p = v; }
  static float hsum(float v) { return v; }
  static float hmax(float v) { return v; }
  static float add(float a, float b) { return a + b; }
  static float mul(float a, float b) { return a * b; }
  static float div(float a, float b) { return a / b; }
  // As x86's min/max: the second operand when either is NaN.
  static float min(float a, float b) { return a < b ? a : b; }
  static float max(float a, float b) { return a > b ? a : b; }
  static float round_even(float v) { return std::nearbyint(v); }
  static float pow2(float n) { return std::bit_cast<float>(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23); }
  static float times_pow2(float x, float n) { return x * pow2(n); }
};

}  // namespace llama3::kernels
