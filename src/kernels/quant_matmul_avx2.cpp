// AVX2 int8 products (see quant_matmul.h for the arithmetic), also used on AVX-512 CPUs without
// VNNI. A ymm holds half a packed vector: 8 weight rows (dword lane = row) x 4 k; a tile is those
// 8 rows x BT batch rows, with each activation dword broadcast from memory.
// Q8_0: the sign trick, since vpmaddubsw would saturate with unsigned weights up to 255:
//   |w| (w = u ^ 0x80 as int8, |-128| = 128 read unsigned) times sign(w) * a (|a| <= 127),
//   pair sums <= 2 * 128 * 127 < 2^15, so exactly sum w * a = sum u * a - 128 * sum a.
// Q4_0: nibbles (0..15) times a directly; all 16 pair sums of a block fit an int16 lane
//   (16 * 15 * 127 < 2^15), so one vpmaddwd per block, then the - 8 * sum(a) correction.
#include <immintrin.h>

#include <algorithm>

#include "kernels/quant_matmul.h"
#include "kernels/quant_tile_input.h"

namespace llama3::kernels {

namespace {

inline __m256i broadcast_i32(const std::byte* p) { return _mm256_set1_epi32(load_i32(p)); }

// An opaque register copy: stops GCC from reassociating an accumulation chain into a tree of
// temporaries (it did, and spilled them: 3x slower).
inline void chain(__m256i& v) { asm("" : "+x"(v)); }

// One block's exact integer dot products of 8 rows with BT batch rows (Q8_0: u - 128 folded in).
template <WeightFormat F, int BT>
inline void block_dots(const uint8_t* qb, const TileInput& in, int64_t b, __m256i (&s)[BT]) {
  const std::byte* ab = in.base + b * 32;
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (F == WeightFormat::Q8_0) {
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
#pragma GCC unroll 8
    for (int t = 0; t < BT; ++t) s[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const __m256i w = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + i * 64)), flip);
      const __m256i aw = _mm256_abs_epi8(w);
#pragma GCC unroll 8
      for (int t = 0; t < BT; ++t) {
        const __m256i a = broadcast_i32(ab + t * in.stride + i * 4);
        const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(a, w));
        s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(p, ones));
        chain(s[t]);
      }
    }
  } else {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    __m256i s16[BT];
#pragma GCC unroll 8
    for (int t = 0; t < BT; ++t) s16[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + i * 64));
      const __m256i lo = _mm256_and_si256(v, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
#pragma GCC unroll 8
      for (int t = 0; t < BT; ++t) {
        const std::byte* a = ab + t * in.stride;
        s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(lo, broadcast_i32(a + i * 4)));
        s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(hi, broadcast_i32(a + 16 + i * 4)));
        chain(s16[t]);
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < BT; ++t) {
      const __m256i sum = broadcast_i32(in.base + t * in.stride + in.sums + b * 4);
      s[t] = _mm256_sub_epi32(_mm256_madd_epi16(s16[t], ones), _mm256_slli_epi32(sum, 3));
    }
  }
}

template <WeightFormat F, int BT>
inline void tile(const uint8_t* group, int64_t scale_bytes, int64_t nb, int half, const TileInput& in, float* y,
                 int64_t ldy, int valid) {
  constexpr int64_t kQuantBytes = packed_block_quant_bytes(F);
  const uint8_t* quants = group + scale_bytes + half * 32;
  __m256 acc[BT];
#pragma GCC unroll 8
  for (int t = 0; t < BT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256 dw =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(group + b * 32 + half * 16)));
    __m256i s[BT];
    block_dots<F, BT>(quants + b * kQuantBytes, in, b, s);
#pragma GCC unroll 8
    for (int t = 0; t < BT; ++t) {
      const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(load_f32(in.base + t * in.stride + in.scales + b * 4)));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]), scale, acc[t]);
    }
  }
  if (valid == 8) {
#pragma GCC unroll 8
    for (int t = 0; t < BT; ++t) _mm256_storeu_ps(y + t * ldy, acc[t]);
  } else {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 8
    for (int t = 0; t < BT; ++t) _mm256_maskstore_ps(y + t * ldy, mask, acc[t]);
  }
}

template <WeightFormat F, int BT>
inline void half_rows(const uint8_t* group, int64_t scale_bytes, int64_t nb, int half, const TileInput& in,
                      int64_t t_begin, int64_t t_end, float* y, int64_t ldy, int valid) {
  int64_t t = t_begin;
  for (; t + BT <= t_end; t += BT) {
    tile<F, BT>(group, scale_bytes, nb, half, in.from_row(t), y + t * ldy, ldy, valid);
  }
  if constexpr (BT > 1) {
    if (t < t_end) half_rows<F, BT / 2>(group, scale_bytes, nb, half, in, t, t_end, y, ldy, valid);
  }
}

template <WeightFormat F>
void rows(const QMatmulJob& job, int64_t row_begin, int64_t row_end) {
  constexpr int kTile = 4;
  const QuantizedActivations& x = *job.x;
  const int64_t nb = job.w.cols / kQuantBlock;
  const int64_t scale_bytes = packed_scale_bytes(job.w.cols);
  const int64_t group_bytes = packed_group_bytes(F, job.w.cols);
  const TileInput in(x);
  const int64_t block = batch_rows_per_pass(x, kTile);
  for (int64_t t0 = 0; t0 < x.rows(); t0 += block) {
    const int64_t t1 = std::min(x.rows(), t0 + block);
    for (int64_t n = row_begin; n < row_end; n += kGroupRows) {
      const auto* group = reinterpret_cast<const uint8_t*>(job.w.data) + n / kGroupRows * group_bytes;
      for (int half = 0; half < 2; ++half) {
        const auto valid = static_cast<int>(std::min<int64_t>(8, row_end - n - half * 8));
        if (valid > 0) half_rows<F, kTile>(group, scale_bytes, nb, half, in, t0, t1, job.y + n + half * 8, job.ldy, valid);
      }
    }
  }
}

}  // namespace

void matmul_q_rows_avx2(const QMatmulJob& job, int64_t row_begin, int64_t row_end) {
  if (job.w.format == WeightFormat::Q8_0) return rows<WeightFormat::Q8_0>(job, row_begin, row_end);
  rows<WeightFormat::Q4_0>(job, row_begin, row_end);
}

}  // namespace llama3::kernels
