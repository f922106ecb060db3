#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kernel_test_util.h"

namespace llama3::kernels {
namespace {

using testing::random_floats;

// A pool with `blocks` blocks; positions are stored through `table`.
struct Pool {
  std::vector<float> kf, vf;
  std::vector<uint16_t> kb, vb;
  KvPoolView view;
  Pool(KvDType dtype, int64_t blocks, int64_t heads, int64_t block_size, int64_t hd) {
    view.dtype = dtype;
    view.n_kv_heads = heads;
    view.block_size = block_size;
    view.head_dim = hd;
    const size_t n = static_cast<size_t>(blocks * heads * block_size * hd);
    if (dtype == KvDType::F32) {
      kf.assign(n, NAN), vf.assign(n, NAN);  // unwritten slots must never be read
      view.k = kf.data(), view.v = vf.data();
    } else {
      kb.assign(n, 0x7fc0), vb.assign(n, 0x7fc0);
      view.k = kb.data(), view.v = vb.data();
    }
  }
};

// Softmax attention in double straight from the definition, over the rows as stored.
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                              int64_t group, int64_t kv_head, int64_t heads, int64_t n_ctx, int64_t hd, bool bf16) {
  auto round = [&](float f) { return bf16 ? static_cast<double>(bf16_to_f32(f32_to_bf16(f))) : f; };
  std::vector<double> out(static_cast<size_t>(group * hd), 0.0);
  for (int64_t g = 0; g < group; ++g) {
    std::vector<double> s(static_cast<size_t>(n_ctx));
    for (int64_t t = 0; t < n_ctx; ++t) {
      double dot = 0;
      for (int64_t i = 0; i < hd; ++i) dot += q[g * hd + i] * round(k[(t * heads + kv_head) * hd + i]);
      s[t] = dot / std::sqrt(static_cast<double>(hd));
    }
    const double mx = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (auto& x : s) sum += (x = std::exp(x - mx));
    for (int64_t t = 0; t < n_ctx; ++t)
      for (int64_t i = 0; i < hd; ++i) out[g * hd + i] += s[t] / sum * round(v[(t * heads + kv_head) * hd + i]);
  }
  return out;
}

struct Case {
  KvDType dtype;
  int64_t hd, heads, group, block_size, n_ctx;
};

class AttentionCases : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionCases, EveryIsaMatchesReferenceThroughShuffledPageTable) {
  const Case c = GetParam();
  const int64_t blocks_needed = (c.n_ctx + c.block_size - 1) / c.block_size;
  const int64_t pool_blocks = blocks_needed + 3;
  Pool pool(c.dtype, pool_blocks, c.heads, c.block_size, c.hd);
  // Physical blocks in a shuffled order, as a real allocator hands them out.
  std::vector<int32_t> table(static_cast<size_t>(pool_blocks));
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), std::mt19937(7));
  table.resize(static_cast<size_t>(blocks_needed));
  const auto k = random_floats(c.n_ctx * c.heads * c.hd, 11, 2.0f);
  const auto v = random_floats(c.n_ctx * c.heads * c.hd, 12);
  for (int64_t t = 0; t < c.n_ctx; ++t) kv_store(pool.view, table, t, &k[t * c.heads * c.hd], &v[t * c.heads * c.hd]);
  const auto q = random_floats(c.group * c.hd, 13, 2.0f);
  const int64_t kv_head = c.heads - 1;
  const auto expected = reference(q, k, v, c.group, kv_head, c.heads, c.n_ctx, c.hd, c.dtype == KvDType::BF16);
  std::vector<Isa> isas = testing::simd_isas();
  isas.push_back(Isa::Scalar);
  for (Isa isa : isas) {
    testing::IsaScope scope(isa);
    std::vector<float> out(c.group * c.hd), scores(c.group * c.n_ctx);
    AttentionArgs a{q.data(), c.group, kv_head, &pool.view, table, c.n_ctx, 1.0f / std::sqrt(float(c.hd)),
                    out.data(), scores.data()};
    attention(a);
    // fp32 dot products and softmax over <= 300 terms of magnitude <= ~10: error well under
    // 1e-4; a wrong block, slot or head gives errors of order 0.1.
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], expected[i], 1e-4) << isa_name(isa) << " i=" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionCases,
    ::testing::Values(Case{KvDType::F32, 64, 2, 4, 16, 1}, Case{KvDType::F32, 64, 8, 4, 32, 300},
                      Case{KvDType::BF16, 64, 8, 4, 32, 77}, Case{KvDType::BF16, 128, 2, 1, 7, 50},
                      Case{KvDType::F32, 24, 3, 2, 5, 13},  // head_dim 24: AVX-512 falls back, AVX2 runs
                      Case{KvDType::BF16, 6, 1, 3, 4, 9}));  // head_dim 6: scalar everywhere

TEST(Attention, FirstPositionReturnsItsOwnValue) {
  Pool pool(KvDType::F32, 1, 1, 4, 16);
  const std::vector<int32_t> table = {0};
  const auto k = random_floats(16, 1), v = random_floats(16, 2), q = random_floats(16, 3);
  kv_store(pool.view, table, 0, k.data(), v.data());
  std::vector<float> out(16), scores(1);
  attention({q.data(), 1, 0, &pool.view, table, 1, 0.25f, out.data(), scores.data()});
  for (int i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(out[i], v[i]);
}

}  // namespace
}  // namespace llama3::kernels
