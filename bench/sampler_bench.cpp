// Sampler cost per call for the Llama 3 vocabulary (128256), the figure that matters when
// 32 users each sample once per decode step.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "runtime/sampler.h"

namespace {

using llama3::runtime::Sampler;
using llama3::runtime::SamplingParams;
using llama3::runtime::Xoshiro256;

constexpr size_t kVocab = 128256;

// A logits row shaped like a language model's: a broad normal bulk (sd `spread`) plus a few
// dozen strongly preferred tokens. Deterministic, so runs compare.
std::vector<float> make_logits(uint64_t seed, float spread, bool peaked) {
  Xoshiro256 rng(seed);
  std::vector<float> logits(kVocab);
  for (auto& v : logits) {
    const double u1 = 1.0 - rng.next_double();  // (0, 1]
    const double u2 = rng.next_double();
    v = static_cast<float>(spread * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  if (peaked) {
    for (int i = 0; i < 40; ++i) logits[rng.next() % kVocab] = 8.0f + static_cast<float>(i % 7);
  }
  return logits;
}

void run(benchmark::State& state, SamplingParams params, float spread, bool peaked) {
  const auto logits = make_logits(7, spread, peaked);
  Sampler sampler(params, 0);
  for (auto _ : state) benchmark::DoNotOptimize(sampler.sample(logits));
  state.SetItemsProcessed(state.iterations());
}

void BM_SampleGreedy(benchmark::State& state) { run(state, {0.0f, 1.0f, 0, 1}, 2.0f, true); }
void BM_SampleDefault_T06_K32_P09(benchmark::State& state) {
  run(state, {0.6f, 0.9f, 32, 1}, 2.0f, true);
}
void BM_SampleK1000_P09(benchmark::State& state) { run(state, {0.6f, 0.9f, 1000, 1}, 2.0f, true); }
void BM_SampleK100_P09(benchmark::State& state) { run(state, {0.6f, 0.9f, 100, 1}, 2.0f, true); }
void BM_SampleNoTopK_P09_Peaked(benchmark::State& state) {
  run(state, {0.6f, 0.9f, 0, 1}, 2.0f, true);
}
// Worst case for the nucleus search: a nearly flat row, so the nucleus is most of the vocabulary.
void BM_SampleNoTopK_P09_Flat(benchmark::State& state) {
  run(state, {1.0f, 0.9f, 0, 1}, 0.1f, false);
}
void BM_SampleNoTopK_P1(benchmark::State& state) { run(state, {0.6f, 1.0f, 0, 1}, 2.0f, true); }

// One decode step of the demo: 32 users, one row each, default parameters.
void BM_SampleBatch32Default(benchmark::State& state) {
  std::vector<std::vector<float>> rows;
  std::vector<Sampler> samplers;
  for (uint64_t u = 0; u < 32; ++u) {
    rows.push_back(make_logits(100 + u, 2.0f, true));
    samplers.emplace_back(SamplingParams{}, u);
  }
  for (auto _ : state) {
    for (size_t u = 0; u < 32; ++u) benchmark::DoNotOptimize(samplers[u].sample(rows[u]));
  }
  state.SetItemsProcessed(state.iterations() * 32);
}

BENCHMARK(BM_SampleGreedy);
BENCHMARK(BM_SampleDefault_T06_K32_P09);
BENCHMARK(BM_SampleK100_P09);
BENCHMARK(BM_SampleK1000_P09);
BENCHMARK(BM_SampleNoTopK_P09_Peaked);
BENCHMARK(BM_SampleNoTopK_P09_Flat);
BENCHMARK(BM_SampleNoTopK_P1);
BENCHMARK(BM_SampleBatch32Default);

}  // namespace
