// Paged causal attention (kernels/attention.h) against attention computed in double straight
// from the definition, over what the cache stores (kv_load): every ISA, every KV dtype, prefill
// chunks and decode steps, lengths around the block and partition boundaries and long contexts,
// GQA and MHA, shuffled block tables.
#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/parallel.h"
#include "kernel_test_util.h"

namespace llama3::kernels {
namespace {

using testing::random_floats;

// A pool of `blocks` blocks whose memory starts as NaN (bf16/f32) or garbage scales, so a slot
// that was never written poisons any result that reads it.
struct Pool {
  std::vector<uint8_t> k, v;
  std::vector<float> ks, vs;
  KvPoolView view;
  Pool(KvDType dtype, int64_t blocks, int64_t heads, int64_t block_size, int64_t hd) {
    view.dtype = dtype;
    view.n_kv_heads = heads;
    view.block_size = block_size;
    view.head_dim = hd;
    const size_t n = static_cast<size_t>(blocks * heads * block_size * hd) * kv_element_bytes(dtype);
    k.assign(n, 0xff), v.assign(n, 0xff);  // 0xffff.. is a NaN in f32 and bf16
    view.k = k.data(), view.v = v.data();
    if (dtype == KvDType::Q8) {
      ks.assign(static_cast<size_t>(blocks * heads * block_size), NAN);
      vs.assign(ks.size(), NAN);
      view.k_scale = ks.data(), view.v_scale = vs.data();
    }
  }
};

// A shuffled table of `needed` blocks out of a pool of `pool_blocks`.
std::vector<int32_t> shuffled_table(int64_t pool_blocks, int64_t needed, uint32_t seed) {
  std::vector<int32_t> t(static_cast<size_t>(pool_blocks));
  std::iota(t.begin(), t.end(), 0);
  std::shuffle(t.begin(), t.end(), std::mt19937(seed));
  t.resize(static_cast<size_t>(needed));
  return t;
}

// Causal attention in double over the stored keys/values: rows [n_tokens][n_heads][hd] for the
// tokens at positions start, start + 1, ...
std::vector<double> reference(const Pool& pool, std::span<const int32_t> table, const float* q, int64_t n_tokens,
                              int64_t start, int64_t n_heads) {
  const KvPoolView& p = pool.view;
  const int64_t hd = p.head_dim, group = n_heads / p.n_kv_heads, n_ctx = start + n_tokens;
  std::vector<std::vector<float>> keys(static_cast<size_t>(p.n_kv_heads * n_ctx)), values(keys.size());
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    for (int64_t t = 0; t < n_ctx; ++t) {
      auto& kk = keys[static_cast<size_t>(h * n_ctx + t)];
      auto& vv = values[static_cast<size_t>(h * n_ctx + t)];
      kk.resize(static_cast<size_t>(hd)), vv.resize(static_cast<size_t>(hd));
      kv_load(p, table, t, h, kk.data(), vv.data());
    }
  }
  std::vector<double> out(static_cast<size_t>(n_tokens * n_heads * hd), 0.0);
  std::vector<double> s(static_cast<size_t>(n_ctx));
  for (int64_t i = 0; i < n_tokens; ++i) {
    const int64_t visible = start + i + 1;
    for (int64_t head = 0; head < n_heads; ++head) {
      const int64_t kvh = head / group;
      const float* qr = q + (i * n_heads + head) * hd;
      double mx = -INFINITY;
      for (int64_t t = 0; t < visible; ++t) {
        const auto& kk = keys[static_cast<size_t>(kvh * n_ctx + t)];
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(qr[d]) * kk[static_cast<size_t>(d)];
        s[static_cast<size_t>(t)] = dot / std::sqrt(static_cast<double>(hd));
        mx = std::max(mx, s[static_cast<size_t>(t)]);
      }
      double sum = 0;
      for (int64_t t = 0; t < visible; ++t) sum += (s[static_cast<size_t>(t)] = std::exp(s[static_cast<size_t>(t)] - mx));
      double* o = out.data() + (i * n_heads + head) * hd;
      for (int64_t t = 0; t < visible; ++t) {
        const auto& vv = values[static_cast<size_t>(kvh * n_ctx + t)];
        const double w = s[static_cast<size_t>(t)] / sum;
        for (int64_t d = 0; d < hd; ++d) o[d] += w * vv[static_cast<size_t>(d)];
      }
    }
  }
  return out;
}

struct Case {
  KvDType dtype;
  int64_t hd, kv_heads, group, block_size;
  int64_t cached;  // positions already in the cache before the call
  int64_t tokens;  // new tokens (1: a decode step)
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return std::string(kv_dtype_name(c.dtype)) + "_hd" + std::to_string(c.hd) + "_kv" + std::to_string(c.kv_heads) + "_g" +
         std::to_string(c.group) + "_bs" + std::to_string(c.block_size) + "_at" + std::to_string(c.cached) + "_n" +
         std::to_string(c.tokens);
}

class AttentionCases : public ::testing::TestWithParam<Case> {};

// The new tokens' keys/values are stored first (as the model does), then attention runs; each
// ISA must agree with the double reference.
TEST_P(AttentionCases, EveryIsaMatchesReferenceThroughShuffledPageTable) {
  const Case c = GetParam();
  const int64_t n_heads = c.kv_heads * c.group, n_ctx = c.cached + c.tokens;
  const int64_t needed = (n_ctx + c.block_size - 1) / c.block_size;
  Pool pool(c.dtype, needed + 3, c.kv_heads, c.block_size, c.hd);
  const auto table = shuffled_table(needed + 3, needed, 7);
  const int64_t kv_row = c.kv_heads * c.hd;
  for (int64_t t = 0; t < n_ctx; ++t) {
    const auto k = random_floats(static_cast<size_t>(kv_row), static_cast<uint32_t>(11 + 2 * t), 2.0f);
    const auto v = random_floats(static_cast<size_t>(kv_row), static_cast<uint32_t>(12 + 2 * t));
    kv_store(pool.view, table, t, k.data(), v.data());
  }
  const auto q = random_floats(static_cast<size_t>(c.tokens * n_heads * c.hd), 13, 2.0f);
  const auto expected = reference(pool, table, q.data(), c.tokens, c.cached, n_heads);
  std::vector<Isa> isas = testing::simd_isas();
  isas.push_back(Isa::Scalar);
  for (Isa isa : isas) {
    testing::IsaScope scope(isa);
    std::vector<float> out(q.size(), NAN);
    const AttentionSequence seq{0, c.tokens, c.cached, table};
    attention({q.data(), out.data(), n_heads, &pool.view, 1.0f / std::sqrt(static_cast<float>(c.hd)), {&seq, 1}});
    // fp32 dot products of <= 128 terms and softmax sums over up to ~20k terms, outputs of
    // magnitude < 1: errors of a few 1e-6; a wrong block, slot, head, mask or rescale gives
    // errors of order 0.01 or more.
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_NEAR(out[i], expected[i], 1e-4) << isa_name(isa) << " element " << i << " (token "
                                             << static_cast<int64_t>(i) / (n_heads * c.hd) << ")";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionCases,
    ::testing::Values(
        // Decode at lengths 1, block - 1, block + 1, across the partition boundary and long.
        Case{KvDType::F32, 64, 2, 4, 32, 0, 1}, Case{KvDType::BF16, 64, 2, 4, 32, 30, 1},
        Case{KvDType::Q8, 64, 2, 4, 32, 32, 1}, Case{KvDType::BF16, 64, 8, 4, 32, 1023, 1},
        Case{KvDType::F32, 64, 8, 4, 32, 1024, 1}, Case{KvDType::Q8, 128, 2, 4, 16, 4096 + 6, 1},
        Case{KvDType::BF16, 64, 2, 1, 32, 20000, 1},  // MHA
        // Prefill: a whole prompt, chunks after a cached prefix, ragged sizes.
        Case{KvDType::F32, 64, 2, 4, 32, 0, 33}, Case{KvDType::BF16, 64, 2, 4, 32, 0, 31},
        Case{KvDType::Q8, 64, 2, 4, 32, 5, 100}, Case{KvDType::F32, 128, 2, 1, 16, 17, 70},
        Case{KvDType::BF16, 64, 1, 3, 32, 4096 + 7 - 50, 50}, Case{KvDType::Q8, 64, 2, 4, 32, 20000, 37},
        // Block sizes that are not a multiple of the vector width, head_dim 24 (AVX-512 falls
        // back to the reference, AVX2 runs) and 6 (reference everywhere).
        Case{KvDType::F32, 64, 2, 4, 7, 40, 1}, Case{KvDType::BF16, 64, 2, 4, 5, 3, 29},
        Case{KvDType::Q8, 64, 2, 2, 12, 1500, 1}, Case{KvDType::F32, 24, 3, 2, 5, 13, 4},
        Case{KvDType::BF16, 6, 1, 3, 4, 9, 3}),
    case_name);

// A batch of prefill and decode sequences with interleaved blocks of one pool.
struct MixedBatch {
  static constexpr int64_t kHd = 64, kKv = 2, kGroup = 4, kBs = 16;
  Pool pool{KvDType::BF16, 200, kKv, kBs, kHd};
  std::vector<std::vector<int32_t>> tables;
  std::vector<AttentionSequence> seqs;
  std::vector<float> q;
  int64_t rows = 0;
  MixedBatch() {
    const int64_t cached[] = {1500, 0, 40, 900};
    const int64_t tokens[] = {1, 45, 1, 20};
    auto all = shuffled_table(200, 200, 3);
    size_t next = 0;
    for (int i = 0; i < 4; ++i) {
      const int64_t n_ctx = cached[i] + tokens[i];
      const size_t blocks = static_cast<size_t>((n_ctx + kBs - 1) / kBs);
      tables.emplace_back(all.begin() + static_cast<long>(next), all.begin() + static_cast<long>(next + blocks));
      next += blocks;
      for (int64_t t = 0; t < n_ctx; ++t) {
        const auto k = random_floats(kKv * kHd, static_cast<uint32_t>(100 * i + 2 * t), 2.0f);
        const auto v = random_floats(kKv * kHd, static_cast<uint32_t>(100 * i + 2 * t + 1));
        kv_store(pool.view, tables.back(), t, k.data(), v.data());
      }
    }
    for (int i = 0; i < 4; ++i) {
      seqs.push_back({rows, tokens[i], cached[i], tables[static_cast<size_t>(i)]});
      rows += tokens[i];
    }
    q = random_floats(static_cast<size_t>(rows * kKv * kGroup * kHd), 5, 2.0f);
  }
  std::vector<float> run(std::span<const AttentionSequence> which) const {
    std::vector<float> out(q.size(), NAN);
    attention({q.data(), out.data(), kKv * kGroup, &pool.view, 0.125f, which});
    return out;
  }
};

TEST(Attention, EachSequenceIsBitwiseIndependentOfTheBatchAndOfThreads) {
  const MixedBatch m;
  const auto together = m.run(m.seqs);
  const int64_t row = MixedBatch::kKv * MixedBatch::kGroup * MixedBatch::kHd;
  const int saved = thread_count();
  for (int threads : {1, 2, 3}) {
    set_thread_count(threads);
    for (const AttentionSequence& s : m.seqs) {
      const auto alone = m.run({&s, 1});
      for (int64_t i = s.first_row * row; i < (s.first_row + s.n_tokens) * row; ++i) {
        ASSERT_EQ(alone[static_cast<size_t>(i)], together[static_cast<size_t>(i)])
            << threads << " threads, sequence at row " << s.first_row << ", element " << i;
      }
    }
  }
  set_thread_count(saved);
}

// A decode step and the same token as the last of a prefill chunk compute the same thing.
TEST(Attention, DecodeEqualsLastRowOfPrefill) {
  const MixedBatch m;
  const AttentionSequence& s = m.seqs[3];  // 900 cached + 20 new tokens
  const auto prefill = m.run({&s, 1});
  const AttentionSequence last{s.first_row + s.n_tokens - 1, 1, s.start_pos + s.n_tokens - 1, s.block_table};
  const auto decode = m.run({&last, 1});
  const int64_t row = MixedBatch::kKv * MixedBatch::kGroup * MixedBatch::kHd;
  for (int64_t i = last.first_row * row; i < (last.first_row + 1) * row; ++i) {
    ASSERT_NEAR(decode[static_cast<size_t>(i)], prefill[static_cast<size_t>(i)], 1e-5) << "element " << i;
  }
}

TEST(Attention, FirstPositionReturnsItsOwnValue) {
  Pool pool(KvDType::F32, 1, 1, 4, 16);
  const std::vector<int32_t> table = {0};
  const auto k = random_floats(16, 1), v = random_floats(16, 2), q = random_floats(16, 3);
  kv_store(pool.view, table, 0, k.data(), v.data());
  std::vector<float> out(16);
  const AttentionSequence seq{0, 1, 0, table};
  attention({q.data(), out.data(), 1, &pool.view, 0.25f, {&seq, 1}});
  for (int i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(out[i], v[i]);
}

TEST(Attention, RejectsShortBlockTablesAndHeadCountsThatDoNotGroup) {
  Pool pool(KvDType::F32, 4, 2, 4, 16);
  const std::vector<int32_t> table = {0, 1};
  std::vector<float> q(3 * 16 * 9), out(q.size());
  const AttentionSequence too_long{0, 9, 0, table};  // 9 positions, table covers 8
  EXPECT_THROW(attention({q.data(), out.data(), 2, &pool.view, 0.25f, {&too_long, 1}}), Error);
  const AttentionSequence ok{0, 1, 0, table};
  EXPECT_THROW(attention({q.data(), out.data(), 3, &pool.view, 0.25f, {&ok, 1}}), Error);
}

TEST(KvPool, Q8StoresEachHeadRowWithinHalfAStepOfItsScale) {
  Pool pool(KvDType::Q8, 2, 3, 8, 64);
  const std::vector<int32_t> table = {1, 0};
  const auto k = random_floats(3 * 64, 1, 5.0f), v = random_floats(3 * 64, 2, 0.01f);
  kv_store(pool.view, table, 9, k.data(), v.data());
  std::vector<float> kb(64), vb(64);
  for (int64_t h = 0; h < 3; ++h) {
    kv_load(pool.view, table, 9, h, kb.data(), vb.data());
    float kmax = 0, vmax = 0;
    for (int i = 0; i < 64; ++i) kmax = std::max(kmax, std::fabs(k[h * 64 + i])), vmax = std::max(vmax, std::fabs(v[h * 64 + i]));
    for (int i = 0; i < 64; ++i) {
      // Rounding to the nearest of 255 steps of max/127: error at most half a step.
      EXPECT_LE(std::fabs(kb[i] - k[h * 64 + i]), kmax / 254 * 1.0001f) << "head " << h << " k " << i;
      EXPECT_LE(std::fabs(vb[i] - v[h * 64 + i]), vmax / 254 * 1.0001f) << "head " << h << " v " << i;
    }
  }
  EXPECT_EQ(kv_bytes_per_position(KvDType::Q8, 8, 64), 2u * 8 * (64 + 4));
  EXPECT_EQ(kv_bytes_per_position(KvDType::BF16, 8, 64), 2u * 8 * 128);
  EXPECT_EQ(kv_dtype_from_name("q8"), KvDType::Q8);
  EXPECT_FALSE(kv_dtype_from_name("q4").has_value());
}

}  // namespace
}  // namespace llama3::kernels
