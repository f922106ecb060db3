#pragma once
// Small per-row operations of the transformer. Memory-light next to the matrix products: one
// portable version each (GCC vectorizes the simple loops), except silu_mul, whose exp is
// vectorized per ISA (elementwise_loops.h), bitwise equal to its scalar reference.
#include <cstdint>

namespace llama3::kernels {

// y = x / sqrt(mean(x^2) + eps) * w  (sum of squares in double: n is up to 8192).
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);

// y = (x - mean(x)) / sqrt(var(x) + eps) * w + b, torch's LayerNorm (the vision encoder's);
// mean and variance in double.
void layernorm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);

// x[i] = x[i] / 2 * (1 + erf(x[i] / sqrt(2))): the exact GELU (torch's default, the vision
// encoder's MLP). std::erf per value: the encoder's products cost ~100 times more.
void gelu(float* x, int64_t n);

// gate[i] = silu(gate[i]) * up[i], silu(z) = z / (1 + exp(-z)); exp as vector_exp.h.
void silu_mul(float* gate, const float* up, int64_t n);
void silu_mul_scalar(float* gate, const float* up, int64_t n);
void silu_mul_avx2(float* gate, const float* up, int64_t n);
void silu_mul_avx512(float* gate, const float* up, int64_t n);

// Rotates each head's pairs (v[2i], v[2i+1]) by the angle whose cos/sin are cos[i], sin[i]
// (Meta's RoPE convention; Hugging Face weights are un-permuted to it at load time).
void rope_rotate(float* v, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin);

// In-place numerically stable softmax.
void softmax(float* x, int64_t n);

// x += y
void add_inplace(float* x, const float* y, int64_t n);

// true when every value is finite
bool all_finite(const float* x, int64_t n);

}  // namespace llama3::kernels
