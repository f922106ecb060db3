#pragma once
// The bf16 x fp32 matrix product, written once for every SIMD ISA. `V` supplies the vector
// operations on V::kWidth fp32 lanes; included only by the per-ISA kernel files.
//
// Tiles of R weight rows x BT batch rows: each weight vector is widened once and used for BT
// batch rows, and a block of batch rows is swept while the R weight rows are hot in L1, so each
// weight byte comes from memory once per block; the block is sized to stay in L2.
//
// Every (row, batch row) product accumulates in the same order whatever the batch size (lane i
// sums k = i, i+W, ... in sequence, then the horizontal sum, then the k % W tail in sequence),
// so a row's result is bitwise identical in any batch: a user's text never depends on who else
// is in the batch.
//
// The tile loops must be fully unrolled (the pragmas): otherwise GCC -O2 keeps the accumulator
// arrays on the stack and every FMA waits on a store and a load (measured 3-5x slower).
#include <algorithm>

#include "core/dtype.h"
#include "kernels/matmul.h"

namespace llama3::kernels {

template <typename V, int R, int BT>
inline void matmul_tile(const MatmulJob& j, int64_t n, int64_t b0) {
  using Vec = typename V::Vec;
  Vec acc[R][BT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < BT; ++b) acc[r][b] = V::zero();
  const int64_t K = j.k_dim;
  const uint16_t* w = j.w + n * K;
  const float* x = j.x + b0 * j.ldx;
  int64_t k = 0;
  for (; k + V::kWidth <= K; k += V::kWidth) {
    Vec wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = V::load(w + r * K + k);
#pragma GCC unroll 8
    for (int b = 0; b < BT; ++b) {
      const Vec xv = V::load(x + b * j.ldx + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][b] = V::fma(wv[r], xv, acc[r][b]);
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < BT; ++b) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      float sum = V::hsum(acc[r][b]);
      for (int64_t t = k; t < K; ++t) sum += bf16_to_f32(w[r * K + t]) * x[b * j.ldx + t];
      j.y[(b0 + b) * j.ldy + n + r] = sum;
    }
  }
}

template <typename V, int R, int BT>
inline void matmul_row_group(const MatmulJob& j, int64_t n, int64_t b_begin, int64_t b_end) {
  int64_t b = b_begin;
  for (; b + BT <= b_end; b += BT) matmul_tile<V, R, BT>(j, n, b);
  if constexpr (BT > 1) {
    if (b < b_end) matmul_row_group<V, R, BT / 2>(j, n, b, b_end);  // ragged end: halve the tile
  }
}

// Rows [row_begin, row_end) of `job`, in tiles of 4 weight rows x BT batch rows.
template <typename V, int BT>
void matmul_rows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  // Batch rows per block: their activations (block x K x 4 bytes) stay within ~256 KiB of L2
  // while the weight rows stream past: 32 rows at K = 2048, 8 at K = 8192.
  const int64_t block = std::clamp<int64_t>((256 * 1024) / (4 * std::max<int64_t>(job.k_dim, 1)), 4, 32);
  for (int64_t b0 = 0; b0 < job.batch; b0 += block) {
    const int64_t b1 = std::min(job.batch, b0 + block);
    int64_t n = row_begin;
    for (; n + 4 <= row_end; n += 4) matmul_row_group<V, 4, BT>(job, n, b0, b1);
    for (; n < row_end; ++n) matmul_row_group<V, 1, BT>(job, n, b0, b1);
  }
}

}  // namespace llama3::kernels
