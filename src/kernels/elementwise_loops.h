#pragma once
// Element-wise loops written once for every ISA (V: simd_*.h traits); the tail runs on the
// scalar lane with the same operations, so every ISA gives bitwise the scalar reference's result.
// Included only by the per-ISA kernel files and elementwise.cpp.
#include <cstdint>

#include "kernels/simd_scalar.h"
#include "kernels/vector_exp.h"

namespace llama3::kernels {

// gate[i] = gate[i] / (1 + exp(-gate[i])) * up[i]
template <typename V>
void silu_mul_loop(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) {
    const auto g = V::load(gate + i);
    const auto e = exp_vec<V>(V::mul(g, V::set1(-1.0f)));
    V::store(gate + i, V::mul(V::div(g, V::add(V::set1(1.0f), e)), V::load(up + i)));
  }
  if constexpr (V::kWidth > 1) silu_mul_loop<ScalarLane>(gate + i, up + i, n - i);
}

}  // namespace llama3::kernels
