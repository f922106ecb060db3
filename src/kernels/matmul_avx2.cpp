// AVX2 + FMA bf16 x fp32 matrix product, for CPUs without AVX-512. Same tiling idea as the
// AVX-512 kernel with 16 ymm registers: 4 weight rows x 2 batch rows of accumulators. The tile
// loops are fully unrolled (pragmas) so the accumulators stay in registers.
#include <immintrin.h>

#include <algorithm>

#include "core/dtype.h"
#include "kernels/matmul.h"

namespace llama3::kernels {
namespace {

inline __m256 widen_bf16(__m128i v) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int R, int BT>
inline void tile(const MatmulJob& j, int64_t n, int64_t b0) {
  __m256 acc[R][BT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < BT; ++b) acc[r][b] = _mm256_setzero_ps();
  const int64_t K = j.k_dim;
  const uint16_t* w = j.w + n * K;
  const float* x = j.x + b0 * j.ldx;
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      wv[r] = widen_bf16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + r * K + k)));
#pragma GCC unroll 8
    for (int b = 0; b < BT; ++b) {
      const __m256 xv = _mm256_loadu_ps(x + b * j.ldx + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][b] = _mm256_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < BT; ++b) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      float sum = hsum(acc[r][b]);
      for (int64_t t = k; t < K; ++t) sum += bf16_to_f32(w[r * K + t]) * x[b * j.ldx + t];
      j.y[(b0 + b) * j.ldy + n + r] = sum;
    }
  }
}

template <int R>
inline void row_group(const MatmulJob& j, int64_t n, int64_t b_begin, int64_t b_end) {
  int64_t b = b_begin;
  for (; b + 2 <= b_end; b += 2) tile<R, 2>(j, n, b);
  if (b < b_end) tile<R, 1>(j, n, b);
}

}  // namespace

void matmul_bf16_rows_avx2(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  // Batch rows per block sized to stay in L2, as in the AVX-512 kernel.
  const int64_t block = std::clamp<int64_t>((256 * 1024) / (4 * std::max<int64_t>(job.k_dim, 1)), 4, 32);
  for (int64_t b0 = 0; b0 < job.batch; b0 += block) {
    const int64_t b1 = std::min(job.batch, b0 + block);
    int64_t n = row_begin;
    for (; n + 4 <= row_end; n += 4) row_group<4>(job, n, b0, b1);
    for (; n < row_end; ++n) row_group<1>(job, n, b0, b1);
  }
}

}  // namespace llama3::kernels
