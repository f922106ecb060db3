// AVX-512 VNNI int8 products (see quant_matmul.h for the arithmetic). A tile is one packed group
// of 16 weight rows (dword lane r = row r) x BT = 8 batch rows: per block, the 8 weight vectors
// (4 consecutive k of each row; Q4_0: 4 loaded and split into nibbles) are loaded once and used
// by the 8 batch rows' vpdpbusd (activation dword broadcast from memory), then per batch row the
// offset correction and one fma into its fp32 accumulator. Registers: 8 weights + 8 int32 + 8
// fp32 accumulators + scales and temporaries of the 32 zmm.
//
// Measured ceiling of this instruction mix on Zen 4: the per-(batch row, block) vmulps (d_w * d_a)
// and vfmadd share the two FP pipes that run vpdpbusd, so a register-only loop of 8 vpdpbusd +
// vmulps + vfmadd + vcvtdq2ps + vpslld + vpsubd issues vpdpbusd at 80% of its peak; the kernel
// reaches 70-75% of the peak at batch 32 and 512.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/quant_matmul.h"
#include "kernels/quant_tile_input.h"

namespace llama3::kernels {

namespace {

// GCC 12's plain forms of some intrinsics start from _mm512_undefined_*() and trip
// -Wmaybe-uninitialized; the zero-masked forms with a full mask compile to the same instructions.
constexpr __mmask16 kAll = 0xffff;

// acc += w (u8) . the 4 int8 at a, broadcast to every dword lane. GCC 12 does not fold the
// broadcast into vpdpbusd's memory operand ({1to16}) by itself; a separate vpbroadcastd costs
// an extra uop per instruction.
inline __m512i dpbusd_broadcast(__m512i acc, __m512i w, const std::byte* a) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const int32_t*>(a)));
  return acc;
}

// Software prefetch of the next weight group into L2, spread evenly over the current group's
// tiles, so a group's first tile does not wait on memory for every block and batch-1 decode keeps
// more misses in flight than the hardware prefetcher does (measured on Zen 4, 1 thread, batch 1:
// ~22 against ~20 GB/s for Q8_0 and ~25 against ~16 GB/s for Q4_0; prefetching into L1 was
// between the two; with 2 threads, prefetching 2 or 4 groups ahead or with the NTA hint was
// slower than 1 group ahead into L2).
struct Prefetch {
  const char* next;
  const char* end;
  int64_t lines_per_block;
};

inline void prefetch_step(Prefetch& pf) {
  for (int64_t l = 0; l < pf.lines_per_block && pf.next < pf.end; ++l, pf.next += 64) {
    _mm_prefetch(pf.next, _MM_HINT_T1);
  }
}

template <WeightFormat F, int BT>
inline void tile(const uint8_t* group, int64_t scale_bytes, int64_t nb, const TileInput& in, float* y, int64_t ldy,
                 __mmask16 store_mask, Prefetch& pf) {
  constexpr int kShift = F == WeightFormat::Q8_0 ? 7 : 3;  // offset 128 or 8
  constexpr int64_t kQuantBytes = packed_block_quant_bytes(F);
  const auto* scales = reinterpret_cast<const __m256i*>(group);
  const uint8_t* quants = group + scale_bytes;
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  __m512 acc[BT];
#pragma GCC unroll 16
  for (int t = 0; t < BT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* qb = quants + b * kQuantBytes;
    prefetch_step(pf);
    const __m512 dw = _mm512_maskz_cvtph_ps(kAll, _mm256_loadu_si256(scales + b));
    __m512i w[8];  // w[i] pairs with activation bytes 4i..4i+3 of the block
    if constexpr (F == WeightFormat::Q8_0) {
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) w[i] = _mm512_loadu_si512(qb + i * 64);
    } else {
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const __m512i v = _mm512_loadu_si512(qb + i * 64);
        w[i] = _mm512_and_si512(v, nibble);
        w[i + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
      }
    }
    // i outer, batch rows inner: BT independent accumulation chains interleaved, so vpdpbusd's
    // latency is hidden without a deep out-of-order window.
    __m512i s[BT];
#pragma GCC unroll 16
    for (int t = 0; t < BT; ++t) s[t] = _mm512_setzero_si512();
    const std::byte* ab = in.base + b * 32;
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
#pragma GCC unroll 16
      for (int t = 0; t < BT; ++t) s[t] = dpbusd_broadcast(s[t], w[i], ab + t * in.stride + i * 4);
    }
#pragma GCC unroll 16
    for (int t = 0; t < BT; ++t) {
      const std::byte* meta = in.base + t * in.stride + b * 4;
      const __m512i sum = _mm512_set1_epi32(load_i32(meta + in.sums));
      const __m512i isum = _mm512_sub_epi32(s[t], _mm512_maskz_slli_epi32(kAll, sum, kShift));
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(load_f32(meta + in.scales)));
      acc[t] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAll, isum), scale, acc[t]);
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < BT; ++t) _mm512_mask_storeu_ps(y + t * ldy, store_mask, acc[t]);
}

// Batch rows [t_begin, t_end) for one group: tiles of BT, the ragged end in halving tiles.
template <WeightFormat F, int BT>
inline void group_rows(const uint8_t* group, int64_t scale_bytes, int64_t nb, TileInput in, int64_t t_begin,
                       int64_t t_end, float* y, int64_t ldy, __mmask16 mask, Prefetch& pf) {
  int64_t t = t_begin;
  for (; t + BT <= t_end; t += BT) {
    tile<F, BT>(group, scale_bytes, nb, in.from_row(t), y + t * ldy, ldy, mask, pf);
  }
  if constexpr (BT > 1) {
    if (t < t_end) group_rows<F, BT / 2>(group, scale_bytes, nb, in, t, t_end, y, ldy, mask, pf);
  }
}

template <WeightFormat F>
void rows(const QMatmulJob& job, int64_t row_begin, int64_t row_end) {
  constexpr int kTile = 8;
  const QuantizedActivations& x = *job.x;
  const int64_t nb = job.w.cols / kQuantBlock;
  const int64_t scale_bytes = packed_scale_bytes(job.w.cols);
  const int64_t group_bytes = packed_group_bytes(F, job.w.cols);
  const TileInput in(x);
  const int64_t block = batch_rows_per_pass(x, kTile);
  for (int64_t t0 = 0; t0 < x.rows(); t0 += block) {
    const int64_t t1 = std::min(x.rows(), t0 + block);
    const int64_t tiles = (t1 - t0 + kTile - 1) / kTile;
    const int64_t lines_per_block = (group_bytes / 64 + tiles * nb - 1) / (tiles * nb);
    const auto* end = reinterpret_cast<const char*>(job.w.data) + (row_end + kGroupRows - 1) / kGroupRows * group_bytes;
    for (int64_t n = row_begin; n < row_end; n += kGroupRows) {
      const auto* group = reinterpret_cast<const uint8_t*>(job.w.data) + n / kGroupRows * group_bytes;
      const auto mask = static_cast<__mmask16>((1u << std::min<int64_t>(kGroupRows, row_end - n)) - 1);
      Prefetch pf{reinterpret_cast<const char*>(group) + group_bytes, end, lines_per_block};
      group_rows<F, kTile>(group, scale_bytes, nb, in, t0, t1, job.y + n, job.ldy, mask, pf);
    }
  }
}

}  // namespace

void matmul_q_rows_avx512(const QMatmulJob& job, int64_t row_begin, int64_t row_end) {
  if (job.w.format == WeightFormat::Q8_0) return rows<WeightFormat::Q8_0>(job, row_begin, row_end);
  rows<WeightFormat::Q4_0>(job, row_begin, row_end);
}

}  // namespace llama3::kernels
