#pragma once
// The dense attention task (dense_attention.h) written once against the vector traits
// (simd_scalar.h, simd_avx2.h, simd_avx512.h); each ISA file instantiates it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/dense_attention.h"
#include "kernels/simd_scalar.h"
#include "kernels/vector_exp.h"

namespace llama3::kernels::dense_detail {

template <typename V>
void run_task(const DenseTask& t) {
  using Vec = typename V::Vec;
  constexpr int64_t W = V::kWidth;
  const DenseAttention& job = *t.job;
  const int64_t hd = job.head_dim;
  const int64_t kv_head = t.head / (job.n_heads / job.n_kv_heads);
  const float* kt = job.kt + kv_head * hd * job.key_stride;
  const float* v = job.v + kv_head * job.key_stride * hd;
  const int64_t n_keys = t.key_end - t.key_begin;
  const int64_t rows = t.n_rows;
  const float* q[kDenseRows];
  for (int64_t i = 0; i < rows; ++i) q[i] = job.q + (t.first_row + i) * job.q_stride + t.head * hd;

  // Pass 1: scores of W keys at a time for every row (the key vector is loaded once per row set).
  const int64_t vec_end = t.key_begin + n_keys / W * W;
  for (int64_t j = t.key_begin; j < vec_end; j += W) {
    Vec acc[kDenseRows];
    for (int64_t i = 0; i < rows; ++i) acc[i] = V::zero();
    for (int64_t d = 0; d < hd; ++d) {
      const Vec k = V::load(kt + d * job.key_stride + j);
      for (int64_t i = 0; i < rows; ++i) acc[i] = V::fma(V::set1(q[i][d]), k, acc[i]);
    }
    for (int64_t i = 0; i < rows; ++i) V::store(t.scores + i * n_keys + (j - t.key_begin), V::mul(acc[i], V::set1(job.scale)));
  }
  for (int64_t j = vec_end; j < t.key_end; ++j) {  // the last keys, one at a time (same fma order)
    for (int64_t i = 0; i < rows; ++i) {
      float acc = 0.0f;
      for (int64_t d = 0; d < hd; ++d) acc = std::fma(q[i][d], kt[d * job.key_stride + j], acc);
      t.scores[i * n_keys + (j - t.key_begin)] = acc * job.scale;
    }
  }

  // Softmax of each row: exact max, exponentials, their sum.
  float inv_sum[kDenseRows];
  for (int64_t i = 0; i < rows; ++i) {
    float* s = t.scores + i * n_keys;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n_keys; ++j) m = std::max(m, s[j]);
    const int64_t n_vec = n_keys / W * W;
    Vec sum = V::zero();
    for (int64_t j = 0; j < n_vec; j += W) {
      const Vec e = exp_vec<V>(V::add(V::load(s + j), V::set1(-m)));
      V::store(s + j, e);
      sum = V::add(sum, e);
    }
    float total = V::hsum(sum);
    for (int64_t j = n_vec; j < n_keys; ++j) {
      s[j] = exp_vec<ScalarLane>(s[j] - m);
      total += s[j];
    }
    inv_sum[i] = 1.0f / total;
  }

  // Pass 2: out = sum_j p_j v_j, head_dim in vectors (head_dim is a multiple of W here).
  for (int64_t i = 0; i < rows; ++i) {
    float* o = job.out + (t.first_row + i) * job.out_stride + t.head * hd;
    const float* s = t.scores + i * n_keys;
    for (int64_t d0 = 0; d0 < hd; d0 += 4 * W) {
      const int64_t nv = std::min<int64_t>(4, (hd - d0) / W);
      Vec acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
      for (int64_t j = 0; j < n_keys; ++j) {
        const Vec p = V::set1(s[j]);
        const float* vr = v + (t.key_begin + j) * hd + d0;
        for (int64_t u = 0; u < nv; ++u) acc[u] = V::fma(p, V::load(vr + u * W), acc[u]);
      }
      for (int64_t u = 0; u < nv; ++u) V::store(o + d0 + u * W, V::mul(acc[u], V::set1(inv_sum[i])));
    }
  }
}

}  // namespace llama3::kernels::dense_detail
