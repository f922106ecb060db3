#pragma once
// The dense attention task (dense_attention.h) written once against the vector traits
// (simd_scalar.h, simd_avx2.h, simd_avx512.h); each ISA file instantiates it.
//
// Per block of keys: the scores of the task's rows in register tiles of 8 rows x 2 key vectors
// (each key vector loaded once per 8 rows), the running max / sum update, then the output
// accumulated in tiles of 8 rows x 2 head_dim vectors (each value vector loaded once per 8 rows).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/dense_attention.h"
#include "kernels/simd_scalar.h"
#include "kernels/vector_exp.h"

namespace llama3::kernels::dense_detail {

// The tiles always run all kDenseRowTile rows and their loops are fully unrolled (the pragmas:
// GCC otherwise keeps the accumulators in memory, 7x slower), so the accumulators live in
// registers; a task's last tile pads with copies of a real row (q) or with
// scratch rows nobody reads (scores, acc).

// s[i][j - j0] = scale * q_i . k_j for the rows of one tile and keys [j0, j0 + U * W).
template <typename V, int U>
inline void score_tile(const float* const* q, const float* kt, int64_t key_stride, int64_t hd, int64_t j0,
                       float scale, float* s, int64_t ls) {
  using Vec = typename V::Vec;
  constexpr int64_t W = V::kWidth;
  constexpr int64_t R = kDenseRowTile;
  Vec acc[R][U];
#pragma GCC unroll 8
  for (int64_t i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) acc[i][u] = V::zero();
  for (int64_t d = 0; d < hd; ++d) {
    Vec k[U];
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) k[u] = V::load(kt + d * key_stride + j0 + u * W);
#pragma GCC unroll 8
    for (int64_t i = 0; i < R; ++i) {
      const Vec qv = V::set1(q[i][d]);
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) acc[i][u] = V::fma(qv, k[u], acc[i][u]);
    }
  }
#pragma GCC unroll 8
  for (int64_t i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) V::store(s + i * ls + u * W, V::mul(acc[i][u], V::set1(scale)));
}

// o[i][d0 .. d0 + U * W) += sum_j p[i][j] v_j[d0 ..] over the block's n keys.
template <typename V, int U>
inline void value_tile(const float* p, int64_t ls, const float* v, int64_t hd, int64_t n, int64_t d0, float* o,
                       int64_t lo) {
  using Vec = typename V::Vec;
  constexpr int64_t W = V::kWidth;
  constexpr int64_t R = kDenseRowTile;
  Vec acc[R][U];
#pragma GCC unroll 8
  for (int64_t i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) acc[i][u] = V::load(o + i * lo + d0 + u * W);
  for (int64_t j = 0; j < n; ++j) {
    Vec x[U];
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) x[u] = V::load(v + j * hd + d0 + u * W);
#pragma GCC unroll 8
    for (int64_t i = 0; i < R; ++i) {
      const Vec pv = V::set1(p[i * ls + j]);
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) acc[i][u] = V::fma(pv, x[u], acc[i][u]);
    }
  }
#pragma GCC unroll 8
  for (int64_t i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) V::store(o + i * lo + d0 + u * W, acc[i][u]);
}

template <typename V>
void run_task(const DenseTask& t) {
  using Vec = typename V::Vec;
  constexpr int64_t W = V::kWidth;
  const DenseAttention& job = *t.job;
  const int64_t hd = job.head_dim, group = job.n_heads / job.n_kv_heads, rows = t.n_rows * group;
  const float* kt = job.kt + t.kv_head * hd * job.key_stride;
  const float* vv = job.v + t.kv_head * job.key_stride * hd;
  // Row i: token first_row + i / group, query head kv_head * group + i % group.
  auto row_offset = [&](int64_t i, int64_t stride) {
    return (t.first_row + i / group) * stride + (t.kv_head * group + i % group) * hd;
  };
  float* scores = t.scratch;                         // [kDenseRows][kDenseKeyBlock]
  float* acc = scores + kDenseRows * kDenseKeyBlock;  // [kDenseRows][hd]
  float* row_max = acc + kDenseRows * hd;
  float* row_sum = row_max + kDenseRows;
  constexpr int64_t ls = kDenseKeyBlock;
  std::fill(acc, acc + kDenseRows * hd, 0.0f);  // the padding rows too: no stale denormals or NaNs
  std::fill(row_max, row_max + rows, -std::numeric_limits<float>::infinity());
  std::fill(row_sum, row_sum + rows, 0.0f);

  for (int64_t kb = t.key_begin; kb < t.key_end; kb += kDenseKeyBlock) {
    const int64_t n = std::min(kDenseKeyBlock, t.key_end - kb);
    for (int64_t r0 = 0; r0 < rows; r0 += kDenseRowTile) {
      const int64_t tr = std::min(kDenseRowTile, rows - r0);
      const float* q[kDenseRowTile];
      for (int64_t i = 0; i < kDenseRowTile; ++i) {
        q[i] = job.q + row_offset(r0 + std::min(i, tr - 1), job.q_stride);
      }
      float* s = scores + r0 * ls;
      int64_t j = 0;
      for (; j + 2 * W <= n; j += 2 * W) score_tile<V, 2>(q, kt, job.key_stride, hd, kb + j, job.scale, s + j, ls);
      for (; j + W <= n; j += W) score_tile<V, 1>(q, kt, job.key_stride, hd, kb + j, job.scale, s + j, ls);
      for (; j < n; ++j) {  // the last keys one at a time, in the same fma order as a lane
        for (int64_t i = 0; i < tr; ++i) {
          float a = 0.0f;
          for (int64_t d = 0; d < hd; ++d) a = std::fma(q[i][d], kt[d * job.key_stride + kb + j], a);
          s[i * ls + j] = a * job.scale;
        }
      }
    }
    // Running softmax: a row's new max rescales what it has accumulated so far.
    for (int64_t i = 0; i < rows; ++i) {
      float* s = scores + i * ls;
      const int64_t n_vec = n / W * W;
      Vec vmax = V::set1(row_max[i]);
      for (int64_t j = 0; j < n_vec; j += W) vmax = V::max(vmax, V::load(s + j));  // a scalar loop is latency bound
      float m = V::hmax(vmax);
      for (int64_t j = n_vec; j < n; ++j) m = std::max(m, s[j]);
      const float rescale = row_max[i] == -std::numeric_limits<float>::infinity()
                                ? 0.0f
                                : exp_vec<ScalarLane>(row_max[i] - m);
      row_max[i] = m;
      if (rescale != 1.0f) {
        for (int64_t d = 0; d < hd; ++d) acc[i * hd + d] *= rescale;
      }
      Vec sum = V::zero();
      for (int64_t j = 0; j < n_vec; j += W) {
        const Vec e = exp_vec<V>(V::add(V::load(s + j), V::set1(-m)));
        V::store(s + j, e);
        sum = V::add(sum, e);
      }
      float total = V::hsum(sum);
      for (int64_t j = n_vec; j < n; ++j) total += (s[j] = exp_vec<ScalarLane>(s[j] - m));
      row_sum[i] = row_sum[i] * rescale + total;
    }
    const float* v = vv + kb * hd;
    for (int64_t r0 = 0; r0 < rows; r0 += kDenseRowTile) {
      int64_t d0 = 0;
      for (; d0 + 2 * W <= hd; d0 += 2 * W) value_tile<V, 2>(scores + r0 * ls, ls, v, hd, n, d0, acc + r0 * hd, hd);
      for (; d0 + W <= hd; d0 += W) value_tile<V, 1>(scores + r0 * ls, ls, v, hd, n, d0, acc + r0 * hd, hd);
    }
  }
  for (int64_t i = 0; i < rows; ++i) {
    float* o = job.out + row_offset(i, job.out_stride);
    const float inv = 1.0f / row_sum[i];
    for (int64_t d = 0; d < hd; ++d) o[d] = acc[i * hd + d] * inv;
  }
}

}  // namespace llama3::kernels::dense_detail
