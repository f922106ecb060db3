// AVX-512 bf16 x fp32 matrix product. Weights are widened to fp32 in registers (a shift of the
// 16 bf16 bits), so activations keep full precision. Tiles of 4 weight rows x up to 4 batch
// rows; a block of batch rows is swept while the 4 weight rows are hot in L1, so each weight
// byte comes from memory once per block, and the block is sized to stay in L2.
//
// Every (row, batch row) product accumulates in the same order whatever the batch size (lane i
// sums k = i, i+16, ... in sequence, then the same horizontal sum), so a row's result is bitwise
// identical in any batch: a user's text never depends on who else is in the batch.
//
// The tile loops must be fully unrolled (the pragmas): otherwise GCC keeps the accumulator
// arrays on the stack and every FMA waits on a store and a load (measured 3-5x slower).
#include <immintrin.h>

#include <algorithm>

#include "kernels/matmul.h"
#include "kernels/simd_avx512.h"

namespace llama3::kernels {
namespace {

inline __m512 load_w(const uint16_t* p) {
  return avx512::widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

template <int R, int BT>
inline void tile(const MatmulJob& j, int64_t n, int64_t b0) {
  __m512 acc[R][BT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < BT; ++b) acc[r][b] = _mm512_setzero_ps();
  const int64_t K = j.k_dim;
  const uint16_t* w = j.w + n * K;
  const float* x = j.x + b0 * j.ldx;
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = load_w(w + r * K + k);
#pragma GCC unroll 8
    for (int b = 0; b < BT; ++b) {
      const __m512 xv = _mm512_loadu_ps(x + b * j.ldx + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][b] = _mm512_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
  if (k < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1u);
    __m512 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = avx512::widen_bf16(_mm256_maskz_loadu_epi16(m, w + r * K + k));
#pragma GCC unroll 8
    for (int b = 0; b < BT; ++b) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + b * j.ldx + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][b] = _mm512_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < BT; ++b)
#pragma GCC unroll 8
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
  // Batch rows per block: their activations (block x K x 4 bytes) stay within ~256 KiB of L2
  // while the weight rows stream past: 32 rows at K = 2048, 8 at K = 8192.
  const int64_t block = std::clamp<int64_t>((256 * 1024) / (4 * std::max<int64_t>(job.k_dim, 1)), 4, 32);
  for (int64_t b0 = 0; b0 < job.batch; b0 += block) {
    const int64_t b1 = std::min(job.batch, b0 + block);
    int64_t n = row_begin;
    for (; n + 4 <= row_end; n += 4) row_group<4>(job, n, b0, b1);
    for (; n < row_end; ++n) row_group<1>(job, n, b0, b1);
  }
}

}  // namespace llama3::kernels
