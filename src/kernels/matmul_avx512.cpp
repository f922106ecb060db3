// AVX-512 bf16 x fp32 matrix product. Weights are widened to fp32 in registers (a shift of the
// 16 bf16 bits), so activations keep full precision. Tiles of 4 weight rows x 4 batch rows: the
// weight vectors are widened once and used for 4 batch rows, and a block of the batch is swept
// while the 4 weight rows are still in L1, so each weight byte comes from memory once per call.
#include <immintrin.h>

#include "kernels/simd_avx512.h"

#include <algorithm>

#include "kernels/matmul.h"

namespace llama3::kernels {
namespace {

template <int R, int BT>
inline void tile(const MatmulJob& j, int64_t n, int64_t b0) {
  __m512 acc[R][BT];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < BT; ++b) acc[r][b] = _mm512_setzero_ps();
  const int64_t K = j.k_dim;
  const uint16_t* w = j.w + n * K;
  const float* x = j.x + b0 * j.ldx;
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[R];
    for (int r = 0; r < R; ++r)
      wv[r] = avx512::widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * K + k)));
    for (int b = 0; b < BT; ++b) {
      const __m512 xv = _mm512_loadu_ps(x + b * j.ldx + k);
      for (int r = 0; r < R; ++r) acc[r][b] = _mm512_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
  if (k < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1u);
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = avx512::widen_bf16(_mm256_maskz_loadu_epi16(m, w + r * K + k));
    for (int b = 0; b < BT; ++b) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + b * j.ldx + k);
      for (int r = 0; r < R; ++r) acc[r][b] = _mm512_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
  for (int b = 0; b < BT; ++b)
    for (int r = 0; r < R; ++r) j.y[(b0 + b) * j.ldy + n + r] = avx512::hsum(acc[r][b]);
}

template <int R>
inline void row_group(const MatmulJob& j, int64_t n, int64_t b_begin, int64_t b_end) {
  int64_t b = b_begin;
  for (; b + 4 <= b_end; b += 4) tile<R, 4>(j, n, b);
  switch (b_end - b) {
    case 3: tile<R, 3>(j, n, b); break;
    case 2: tile<R, 2>(j, n, b); break;
    case 1: tile<R, 1>(j, n, b); break;
    default: break;
  }
}

}  // namespace

void matmul_bf16_rows_avx512(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kBatchBlock = 32;  // x rows kept hot in L2 while sweeping the weights
  for (int64_t b0 = 0; b0 < job.batch; b0 += kBatchBlock) {
    const int64_t b1 = std::min(job.batch, b0 + kBatchBlock);
    int64_t n = row_begin;
    for (; n + 4 <= row_end; n += 4) row_group<4>(job, n, b0, b1);
    for (; n < row_end; ++n) row_group<1>(job, n, b0, b1);
  }
}

}  // namespace llama3::kernels
