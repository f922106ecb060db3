#pragma once
// Helpers shared by the forward-pass tests: token streams, block tables, whole-sequence logits.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/parallel.h"
#include "model/llama_model.h"
#include "tiny_model.h"

namespace llama3::model {

inline ModelConfig small_config() { return testing::tiny_config(300); }

inline std::vector<int32_t> tokens(size_t n, uint32_t seed, int32_t vocab = 300) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return t;
}

inline std::vector<int32_t> identity_table(int64_t blocks) {
  std::vector<int32_t> t(static_cast<size_t>(blocks));
  std::iota(t.begin(), t.end(), 0);
  return t;
}

// Logits at every position by one forward over the whole sequence.
inline std::vector<float> full_logits(LlamaModel& m, const std::vector<int32_t>& seq, kernels::KvDType dtype) {
  KvCache cache(m.kv_config(), 64, 16, dtype);  // a rank of a mesh holds its own kv heads
  const auto table = identity_table(64);
  std::vector<float> logits;
  const BatchItem item{seq, 0, table, true};
  m.forward({&item, 1}, cache, logits);
  return logits;
}

// Logits of a 20-token sequence are bitwise the same on one thread and on two.
inline void expect_same_logits_on_one_and_two_threads(LlamaModel& m) {
  const auto seq = tokens(20, 9);
  const int saved = thread_count();
  set_thread_count(1);
  const auto one = full_logits(m, seq, kernels::KvDType::F32);
  set_thread_count(2);
  const auto two = full_logits(m, seq, kernels::KvDType::F32);
  set_thread_count(saved);
  EXPECT_EQ(one, two);
}

}  // namespace llama3::model
