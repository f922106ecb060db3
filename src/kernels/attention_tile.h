#pragma once
// The attention task (attention.h) written once for every ISA: `V` supplies the vector
// operations on V::kWidth fp32 lanes (simd_*.h; the scalar lane is the reference). Included only
// by attention.cpp and the per-ISA kernel files.
//
// A task walks the cache block by block. For each block and kv head, the query rows that see
// any of its keys (causality skips the rest) go through three steps, R rows at a time so that
// every loaded K or V vector serves R rows:
//   1. scores: s[r][j] = q[r] . k[j] with K transposed ([head_dim][block]), so a register holds
//      the scores of W keys and a dimension costs one load, R broadcasts and R FMAs;
//   2. online softmax: the block's max per row, p = exp(s - max) with the vectorized exp, the
//      rescale factor of what the row accumulated so far;
//   3. output: acc[r] = acc[r] * rescale + sum_j p[r][j] * v[j].
// The keys and values are widened to fp32 in registers as they are loaded (decode: each is used
// by the few rows of one kv group), or once per block into a small buffer when many rows share
// the block (prefill tiles) or when the block size is not a multiple of W (the buffer is padded).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/simd_scalar.h"
#include "kernels/vector_exp.h"

namespace llama3::kernels::attention_detail {

inline float exp_scalar(float x) { return exp_vec<ScalarLane>(x); }

// Rows of a task above which each block is widened to fp32 once instead of in every row tile.
inline constexpr int64_t kDirectRows = 8;
// Rows per register tile.
inline constexpr int kRows = 4;
// Rows per register tile of the scores: 8 rows x 2 vectors of keys on AVX-512 keep 16
// accumulators in flight (4 rows x 2 leave the FMA pipes waiting on their latency: 175 against
// 200 GFLOP/s per core on L1-resident data); AVX2 has registers for 4.
template <typename V>
constexpr int score_tile_rows() {
  return V::kWidth >= 16 ? 8 : kRows;
}

// s[r][0 .. nkv*W) = (q[r] . kt[:, j]) (* kscale[j]): R rows, nkv vectors of keys.
template <typename V, typename T, int R>
inline void score_rows(const float* q, int64_t hd, const T* kt, int64_t ld_k, int64_t nkv, const float* kscale,
                       float* s, int64_t ld_s) {
  using Vec = typename V::Vec;
  constexpr int64_t W = V::kWidth;
  int64_t c = 0;
  for (; c + 2 <= nkv; c += 2) {
    Vec acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = V::zero(), acc[r][1] = V::zero();
    const T* k = kt + c * W;
    for (int64_t d = 0; d < hd; ++d, k += ld_k) {
      const Vec k0 = V::load(k), k1 = V::load(k + W);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const Vec qb = V::set1(q[r * hd + d]);
        acc[r][0] = V::fma(qb, k0, acc[r][0]);
        acc[r][1] = V::fma(qb, k1, acc[r][1]);
      }
    }
    if (kscale) {
      const Vec s0 = V::load(kscale + c * W), s1 = V::load(kscale + c * W + W);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][0] = V::mul(acc[r][0], s0), acc[r][1] = V::mul(acc[r][1], s1);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) V::store(s + r * ld_s + c * W, acc[r][0]), V::store(s + r * ld_s + c * W + W, acc[r][1]);
  }
  if (c < nkv) {
    Vec acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = V::zero();
    const T* k = kt + c * W;
    for (int64_t d = 0; d < hd; ++d, k += ld_k) {
      const Vec k0 = V::load(k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r] = V::fma(V::set1(q[r * hd + d]), k0, acc[r]);
    }
    if (kscale) {
      const Vec s0 = V::load(kscale + c * W);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r] = V::mul(acc[r], s0);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) V::store(s + r * ld_s + c * W, acc[r]);
  }
}

// acc[r][d0 .. d0 + DV*W) = acc (* alpha[r]) + sum_{j < n} p[r][j] * v[j][...], for R rows.
template <typename V, typename T, int R, int DV>
inline void pv_chunk(const float* p, int64_t ld_s, int64_t n, const T* v, int64_t hd, int64_t d0, float* acc,
                     int64_t ld_acc, const float* alpha) {
  using Vec = typename V::Vec;
  constexpr int64_t W = V::kWidth;
  Vec a[R][DV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int u = 0; u < DV; ++u) a[r][u] = V::load(acc + r * ld_acc + d0 + u * W);
    if (alpha) {
      const Vec al = V::set1(alpha[r]);
#pragma GCC unroll 8
      for (int u = 0; u < DV; ++u) a[r][u] = V::mul(a[r][u], al);
    }
  }
  const T* vr = v + d0;
  for (int64_t j = 0; j < n; ++j, vr += hd) {
    Vec vv[DV];
#pragma GCC unroll 8
    for (int u = 0; u < DV; ++u) vv[u] = V::load(vr + u * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const Vec pb = V::set1(p[r * ld_s + j]);
#pragma GCC unroll 8
      for (int u = 0; u < DV; ++u) a[r][u] = V::fma(pb, vv[u], a[r][u]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int u = 0; u < DV; ++u) V::store(acc + r * ld_acc + d0 + u * W, a[r][u]);
  }
}

template <typename V, typename T, int R>
inline void pv_rows(const float* p, int64_t ld_s, int64_t n, const T* v, int64_t hd, float* acc, int64_t ld_acc,
                    const float* alpha) {
  // Accumulators per row tile: 4 vectors on AVX-512 (32 registers), 2 on AVX2 (16 registers).
  constexpr int DV = V::kWidth >= 16 ? 4 : 2;
  constexpr int64_t W = V::kWidth;
  int64_t d0 = 0;
  for (; d0 + DV * W <= hd; d0 += DV * W) pv_chunk<V, T, R, DV>(p, ld_s, n, v, hd, d0, acc, ld_acc, alpha);
  for (; d0 < hd; d0 += W) pv_chunk<V, T, R, 1>(p, ld_s, n, v, hd, d0, acc, ld_acc, alpha);
}

// Runs fn.template operator()<R>(row) over rows [begin, end) in tiles of Rows (the last smaller).
template <int Rows = kRows, typename Fn>
inline void for_row_tiles(int64_t begin, int64_t end, Fn&& fn) {
  int64_t r = begin;
  for (; r + Rows <= end; r += Rows) fn.template operator()<Rows>(r);
  if constexpr (Rows > 4) {
    if (end - r >= 4) fn.template operator()<4>(r), r += 4;
  }
  switch (end - r) {
    case 3: fn.template operator()<3>(r); break;
    case 2: fn.template operator()<2>(r); break;
    case 1: fn.template operator()<1>(r); break;
    default: break;
  }
}

// Per-thread working memory of a task.
struct TaskScratch {
  std::vector<float> q;       // scaled queries [heads][rows][head_dim]
  std::vector<float> state;   // [heads][rows][head_dim + 2]: acc, then max and sum
  std::vector<float> s;       // scores, then probabilities [heads][rows][step lanes]
  std::vector<float> alpha;   // [heads][rows]
  std::vector<float> kt, v;   // a block widened to fp32: [head_dim][lanes] and [block][head_dim]
};

// dst[i] = src[i] (* scale[i]) as fp32, for i < n.
template <typename V, typename T>
inline void widen(const T* src, float* dst, int64_t n, const float* scale) {
  int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) {
    const auto x = V::load(src + i);
    V::store(dst + i, scale ? V::mul(x, V::load(scale + i)) : x);
  }
  for (; i < n; ++i) dst[i] = scale ? ScalarLane::load(src + i) * scale[i] : ScalarLane::load(src + i);
}

// Rows [n][hd] of src as fp32, row j times scale[j] when there are scales.
template <typename V, typename T>
inline void widen_rows(const T* src, float* dst, int64_t n, int64_t hd, const float* scale) {
  for (int64_t j = 0; j < n; ++j) {
    const T* s = src + j * hd;
    float* d = dst + j * hd;
    if (!scale) {
      widen<V>(s, d, hd, nullptr);
      continue;
    }
    const auto sv = V::set1(scale[j]);
    int64_t i = 0;
    for (; i + V::kWidth <= hd; i += V::kWidth) V::store(d + i, V::mul(V::load(s + i), sv));
    for (; i < hd; ++i) d[i] = ScalarLane::load(s + i) * scale[j];
  }
}

// A range of memory brought into L2 (prefetcht1) a few lines at a time, spread over work that
// hides it: a burst of prefetches stalls on the core's queue of outstanding misses.
class Prefetch {
 public:
  Prefetch() = default;
  Prefetch(const void* p, int64_t bytes) : p_(static_cast<const char*>(p)), bytes_(bytes) {}
  // Prefetches up to `lines` lines; returns how many of them were left over.
  int issue(int lines) {
    for (; lines > 0 && bytes_ > 0; --lines, p_ += 64, bytes_ -= 64) __builtin_prefetch(p_, 0, 2);
    return lines;
  }
  void drain() { issue(std::numeric_limits<int>::max()); }

 private:
  const char* p_ = nullptr;
  int64_t bytes_ = 0;
};

// The softmax runs over steps of up to kMaxStepBlocks blocks, as many as keep the scores of all
// the task's rows within kStepFloats: one max, rescale and sum per row and step (decode: 16 or
// 32 blocks of 32), while a prefill tile's 128 rows step 4 blocks at a time (2 or 8: slower).
inline constexpr int64_t kStepFloats = 16384;
inline constexpr int64_t kMaxStepBlocks = 32;

template <typename V, typename T>
void run_task(const AttentionTask& t) {
  using Vec = typename V::Vec;
  constexpr int64_t W = V::kWidth;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const KvPoolView& pool = *t.pool;
  const int64_t hd = pool.head_dim;
  const int64_t bs = pool.block_size;
  const int64_t rows = t.n_tokens * t.group;
  const int64_t heads = t.head_end - t.head_begin;
  const int64_t sw = hd + 2;  // state floats per row
  const bool q8 = pool.dtype == KvDType::Q8;
  const bool widen_blocks = bs % W != 0 || rows > kDirectRows;
  const int64_t ld_b = (bs + W - 1) / W * W;  // score lanes per block
  const int64_t step_blocks = std::clamp<int64_t>(kStepFloats / (heads * rows * ld_b), 1, kMaxStepBlocks);
  const int64_t ld_s = step_blocks * ld_b;

  thread_local TaskScratch sc;
  sc.q.resize(static_cast<size_t>(heads * rows * hd));
  sc.state.resize(static_cast<size_t>(heads * rows * sw));
  sc.s.resize(static_cast<size_t>(heads * rows * ld_s));
  sc.alpha.resize(static_cast<size_t>(heads * rows));
  if (widen_blocks) {
    sc.kt.resize(static_cast<size_t>(hd * ld_b));
    sc.v.resize(static_cast<size_t>(bs * hd));
  }
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = t.q + (r / t.group) * t.q_stride + ((t.head_begin + h) * t.group + r % t.group) * hd;
      float* dst = sc.q.data() + (h * rows + r) * hd;
      for (int64_t i = 0; i < hd; ++i) dst[i] = src[i] * t.scale;
      float* st = sc.state.data() + (h * rows + r) * sw;
      std::fill(st, st + hd, 0.0f);
      st[hd] = kNegInf;
      st[hd + 1] = 0.0f;
    }
  }

  const T* kbase = static_cast<const T*>(pool.k);
  const T* vbase = static_cast<const T*>(pool.v);
  // The first row of the task whose token sees position `pos` (rows are in position order).
  auto first_row_seeing = [&](int64_t pos) { return std::max<int64_t>(0, pos - t.first_pos) * t.group; };
  // Keys of block `b` (starting at b0, n_keys written) that row r sees: 0..n_keys.
  auto visible = [&](int64_t r, int64_t b0, int64_t n_keys) {
    return std::clamp<int64_t>(t.first_pos + r / t.group - b0 + 1, 0, n_keys);
  };
  const int64_t key_end = std::min(t.key_end, t.first_pos + t.n_tokens);
  // A prefill tile spends ~1 us of arithmetic per block and kv head, enough to bring the next
  // block's keys (during the scores) and values (during the output) into L2 meanwhile: a tile is
  // 4 KiB of its own (the next kv head's follows it), where the hardware prefetchers stop, so
  // without this every widening load waits on L3 or memory. (Decode tiles hold too little
  // arithmetic to hide a prefetch: measured slower there.)
  int64_t starts[kMaxStepBlocks];
  const int64_t tile_bytes = hd * bs * static_cast<int64_t>(sizeof(T));
  auto next_tile = [&](const T* base, int64_t ib, int64_t kvh) {
    const int64_t next_key = starts[ib] + bs;
    if (next_key >= key_end) return Prefetch();
    return Prefetch(base + pool.tile_offset(t.block_table[static_cast<size_t>(next_key / bs)], kvh), tile_bytes);
  };
  int32_t blocks[kMaxStepBlocks];
  int64_t counts[kMaxStepBlocks];
  for (int64_t step0 = t.key_begin; step0 < key_end; step0 += step_blocks * bs) {
    const int64_t nb = std::min(step_blocks, (key_end - step0 + bs - 1) / bs);
    for (int64_t ib = 0; ib < nb; ++ib) {
      starts[ib] = step0 + ib * bs;
      blocks[ib] = t.block_table[static_cast<size_t>(starts[ib] / bs)];
      counts[ib] = std::min(bs, key_end - starts[ib]);
    }
    const int64_t r0 = first_row_seeing(step0);

    // 1. Scores, block by block and kv head by kv head (the order the pool stores them).
    for (int64_t ib = 0; ib < nb; ++ib) {
      const int64_t nkv = (counts[ib] + W - 1) / W;
      const int64_t rb = first_row_seeing(starts[ib]);
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvh = t.head_begin + h;
        const T* kt = kbase + pool.tile_offset(blocks[ib], kvh);
        Prefetch next_k = widen_blocks ? next_tile(kbase, ib, kvh) : Prefetch();
        Prefetch this_v = widen_blocks ? Prefetch(vbase + pool.tile_offset(blocks[ib], kvh), tile_bytes) : Prefetch();
        const float* kscale = q8 ? pool.k_scale + pool.scale_offset(blocks[ib], kvh) : nullptr;
        const float* qh = sc.q.data() + h * rows * hd;
        float* s = sc.s.data() + h * rows * ld_s + ib * ld_b;
        auto scores = [&]<typename K>(const K* k, int64_t ld_k, const float* ks) {
          auto tile = [&]<int R>(int64_t r) {
            next_k.issue(this_v.issue(8));
            score_rows<V, K, R>(qh + r * hd, hd, k, ld_k, nkv, ks, s + r * ld_s, ld_s);
          };
          for_row_tiles<score_tile_rows<V>()>(rb, rows, tile);
          next_k.drain();
          this_v.drain();
        };
        if (widen_blocks) {
          for (int64_t d = 0; d < hd; ++d) {
            float* dst = sc.kt.data() + d * ld_b;
            widen<V>(kt + d * bs, dst, counts[ib], kscale);
            std::fill(dst + counts[ib], dst + nkv * W, 0.0f);
          }
          scores(sc.kt.data(), ld_b, nullptr);
        } else {
          scores(kt, bs, kscale);
        }
      }
    }

    // 2. Online softmax, row by row: masked lanes (causality, padding) get no weight. Rows from
    // `unmasked_from` on see every key of the step (only blocks at the causal diagonal or at
    // the end of the keys mask any; a partial last block masks every row).
    const int64_t last_key = starts[nb - 1] + counts[nb - 1] - 1;
    const int64_t unmasked_from = counts[nb - 1] == ld_b ? first_row_seeing(last_key) : rows;
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t r = r0; r < rows; ++r) {
        float* s = sc.s.data() + (h * rows + r) * ld_s;
        const bool masked = r < unmasked_from;
        if (masked) {
          for (int64_t ib = 0; ib < nb; ++ib) {
            std::fill(s + ib * ld_b + visible(r, starts[ib], counts[ib]), s + (ib + 1) * ld_b, kNegInf);
          }
        }
        Vec mx = V::load(s);
        for (int64_t c = W; c < nb * ld_b; c += W) mx = V::max(mx, V::load(s + c));
        float* row_state = sc.state.data() + (h * rows + r) * sw;
        const float m_old = row_state[hd];
        const float m_new = std::max(m_old, V::hmax(mx));
        const float alpha = m_old == kNegInf ? 0.0f : exp_scalar(m_old - m_new);
        const Vec neg_m = V::set1(-m_new);
        Vec sum = V::zero();
        for (int64_t c = 0; c < nb * ld_b; c += W) {
          const Vec p = exp_vec<V>(V::add(V::load(s + c), neg_m));
          V::store(s + c, p);
          sum = V::add(sum, p);
        }
        // A masked lane's exp is the clamped exp(-87) ~ 1e-38, which vanishes in the sum (it holds
        // the max's 1) but must not weigh a value (unwritten slots may hold anything): zero it.
        if (masked) {
          for (int64_t ib = 0; ib < nb; ++ib) {
            std::fill(s + ib * ld_b + visible(r, starts[ib], counts[ib]), s + (ib + 1) * ld_b, 0.0f);
          }
        }
        row_state[hd] = m_new;
        row_state[hd + 1] = row_state[hd + 1] * alpha + V::hsum(sum);
        sc.alpha[static_cast<size_t>(h * rows + r)] = alpha;
        if (q8 && !widen_blocks) {
          for (int64_t ib = 0; ib < nb; ++ib) {
            const float* vscale = pool.v_scale + pool.scale_offset(blocks[ib], t.head_begin + h);
            for (int64_t c = 0; c < counts[ib]; c += W) {
              V::store(s + ib * ld_b + c, V::mul(V::load(s + ib * ld_b + c), V::load(vscale + c)));
            }
          }
        }
      }
    }

    // 3. Output: acc = acc * alpha (once per step) + sum_j p_j v_j. Rows of a register tile run
    // to the keys its last row sees; the others have p = 0 there.
    for (int64_t ib = 0; ib < nb; ++ib) {
      const int64_t rb = first_row_seeing(starts[ib]);
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvh = t.head_begin + h;
        const T* vt = vbase + pool.tile_offset(blocks[ib], kvh);
        const float* p = sc.s.data() + h * rows * ld_s + ib * ld_b;
        float* st = sc.state.data() + h * rows * sw;
        const float* alpha = sc.alpha.data() + h * rows;
        auto accumulate = [&]<typename K>(const K* v) {
          for_row_tiles(rb, rows, [&]<int R>(int64_t r) {
            pv_rows<V, K, R>(p + r * ld_s, ld_s, visible(r + R - 1, starts[ib], counts[ib]), v, hd, st + r * sw, sw,
                             ib == 0 ? alpha + r : nullptr);
          });
        };
        if (widen_blocks) {
          widen_rows<V>(vt, sc.v.data(), counts[ib], hd,
                        q8 ? pool.v_scale + pool.scale_offset(blocks[ib], kvh) : nullptr);
          accumulate(sc.v.data());
        } else {
          accumulate(vt);
        }
      }
    }
  }

  // Results: normalized rows, or the partial state for the merge.
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t kvh = t.head_begin + h;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row_state = sc.state.data() + (h * rows + r) * sw;
      if (t.partial) {
        std::copy(row_state, row_state + sw, t.partial + (kvh * rows + r) * sw);
      } else {
        float* dst = t.out + (r / t.group) * t.q_stride + (kvh * t.group + r % t.group) * hd;
        const float l = row_state[hd + 1];
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int64_t i = 0; i < hd; ++i) dst[i] = row_state[i] * inv;
      }
    }
  }
}

}  // namespace llama3::kernels::attention_detail
