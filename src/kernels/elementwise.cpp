#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu_features.h"
#include "kernels/elementwise_loops.h"

namespace llama3::kernels {

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void silu_mul_scalar(float* gate, const float* up, int64_t n) { silu_mul_loop<ScalarLane>(gate, up, n); }

void silu_mul(float* gate, const float* up, int64_t n) {
  switch (active_isa()) {
    case Isa::Avx512: return silu_mul_avx512(gate, up, n);
    case Isa::Avx2: return silu_mul_avx2(gate, up, n);
    case Isa::Scalar: return silu_mul_scalar(gate, up, n);
  }
}

void rope_rotate(float* v, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* p = v + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = p[2 * i];
      const float b = p[2 * i + 1];
      p[2 * i] = a * cos[i] - b * sin[i];
      p[2 * i + 1] = a * sin[i] + b * cos[i];
    }
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const float mx = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void layernorm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const double inv = 1.0 / std::sqrt(var / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>((x[i] - mean) * inv) * w[i] + b[i];
}

void gelu(float* x, int64_t n) {
  constexpr float kInvSqrt2 = 0.70710678118654752440f;
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

bool all_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

}  // namespace llama3::kernels
