// Dense attention (kernels/dense_attention.h) against attention computed in double from the
// definition: every ISA, head sizes that are and are not multiples of the vector width, key
// ranges that start and end off the vector width, GQA and MHA, several runs in one call.
#include "kernels/dense_attention.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "kernel_test_util.h"

namespace llama3::kernels {
namespace {

using testing::random_floats;

struct Case {
  int64_t n_heads, n_kv_heads, head_dim, keys;
  std::vector<QueryRun> runs;
};

struct Inputs {
  std::vector<float> q, kt, v;
  int64_t rows = 0;
};

Inputs make_inputs(const Case& c, uint32_t seed) {
  Inputs in;
  for (const QueryRun& r : c.runs) in.rows = std::max(in.rows, r.first_row + r.n_rows);
  in.q = random_floats(static_cast<size_t>(in.rows * c.n_heads * c.head_dim), seed, 2.0f);
  in.kt = random_floats(static_cast<size_t>(c.n_kv_heads * c.head_dim * c.keys), seed + 1, 2.0f);
  in.v = random_floats(static_cast<size_t>(c.n_kv_heads * c.keys * c.head_dim), seed + 2, 1.0f);
  return in;
}

std::vector<float> run(const Case& c, const Inputs& in) {
  std::vector<float> out(static_cast<size_t>(in.rows * c.n_heads * c.head_dim), NAN);
  DenseAttention job;
  job.q = in.q.data(), job.q_stride = c.n_heads * c.head_dim;
  job.out = out.data(), job.out_stride = c.n_heads * c.head_dim;
  job.n_heads = c.n_heads, job.n_kv_heads = c.n_kv_heads, job.head_dim = c.head_dim;
  job.kt = in.kt.data(), job.v = in.v.data(), job.key_stride = c.keys;
  job.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  job.runs = c.runs;
  dense_attention(job);
  return out;
}

// The definition, in double.
std::vector<double> reference(const Case& c, const Inputs& in) {
  const int64_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  std::vector<double> out(static_cast<size_t>(in.rows * c.n_heads * hd), NAN);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (const QueryRun& r : c.runs) {
    for (int64_t row = r.first_row; row < r.first_row + r.n_rows; ++row) {
      for (int64_t h = 0; h < c.n_heads; ++h) {
        const int64_t kvh = h / group;
        const float* q = in.q.data() + (row * c.n_heads + h) * hd;
        std::vector<double> s;
        double m = -INFINITY;
        for (int64_t j = r.key_begin; j < r.key_end; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d) dot += double(q[d]) * in.kt[static_cast<size_t>((kvh * hd + d) * c.keys + j)];
          s.push_back(dot * scale);
          m = std::max(m, s.back());
        }
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - m));
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0;
          for (int64_t j = r.key_begin; j < r.key_end; ++j) {
            acc += s[static_cast<size_t>(j - r.key_begin)] * in.v[static_cast<size_t>((kvh * c.keys + j) * hd + d)];
          }
          out[static_cast<size_t>((row * c.n_heads + h) * hd + d)] = acc / sum;
        }
      }
    }
  }
  return out;
}

std::vector<Case> cases() {
  return {
      // The small test model's vision encoder: 4 heads of 16, keys real-first with padding rows.
      {4, 4, 16, 96, {{0, 17, 0, 96}, {17, 7, 0, 68}, {24, 72, 0, 68}}},
      // The 11B encoder's head (80 = 5 x 16) with a key count off the vector width.
      {2, 2, 80, 203, {{0, 13, 0, 203}, {13, 3, 0, 150}}},
      // Cross-attention: GQA (4 query heads per kv head), text rows seeing image groups.
      {8, 2, 128, 140, {{0, 5, 0, 70}, {5, 9, 70, 140}, {14, 1, 35, 140}}},
      // Several key blocks and row tasks: runs longer than a task, ranges across block edges.
      {4, 2, 32, 700, {{0, 130, 3, 700}, {130, 70, 0, 300}, {200, 9, 255, 513}}},
      // head_dim 24: not a multiple of 16 (the AVX-512 task falls back to the scalar one).
      {3, 1, 24, 41, {{0, 11, 5, 41}}},
  };
}

// Every case against the definition, with the active ISA.
void expect_matches_definition(const std::string& isa, uint32_t seed) {
  for (const Case& c : cases()) {
    const Inputs in = make_inputs(c, seed += 10);
    const auto got = run(c, in);
    const auto want = reference(c, in);
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::isnan(want[i])) continue;  // rows no run covers
      // fp32 products and sums of <= 700 terms of O(1): a few 1e-7 relative, well inside 2e-5.
      ASSERT_NEAR(got[i], want[i], 2e-5) << isa << " head_dim " << c.head_dim << " at " << i;
    }
  }
}

TEST(DenseAttention, ScalarMatchesTheDefinition) {
  testing::IsaScope scalar(Isa::Scalar);
  expect_matches_definition("scalar", 1);
}

TEST(DenseAttention, EverySimdLevelMatchesTheDefinition) {
  for (Isa isa : testing::simd_isas()) {
    testing::IsaScope scope(isa);
    expect_matches_definition(std::string(isa_name(isa)), 100);
  }
}

TEST(DenseAttention, SameBitsOnAnyNumberOfThreads) {
  const Case c = cases()[0];
  const Inputs in = make_inputs(c, 7);
  const int saved = thread_count();
  set_thread_count(1);
  const auto one = run(c, in);
  set_thread_count(2);
  const auto two = run(c, in);
  set_thread_count(saved);
  for (size_t i = 0; i < one.size(); ++i) ASSERT_EQ(std::bit_cast<uint32_t>(one[i]), std::bit_cast<uint32_t>(two[i]));
}

TEST(DenseAttention, RefusesKeysOutsideTheBuffer) {
  Case c{1, 1, 16, 8, {{0, 1, 0, 9}}};
  const Inputs in = make_inputs(c, 3);
  EXPECT_THROW(run(c, in), std::exception);
  c.runs = {{0, 1, 4, 4}};  // an empty range: no softmax to take
  EXPECT_THROW(run(c, in), std::exception);
}

}  // namespace
}  // namespace llama3::kernels
