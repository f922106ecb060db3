// Vision encoder benchmarks at Llama 3.2 11B Vision's shape (width 1280, 16 heads of 80, tiles of
// 560 px: 1601 tokens padded to 1608, every image run as 4 tiles = 6432 tokens), all threads:
//  - the dense attention of one encoder layer over an image's 6432 tokens; reports GFLOP/s
//    (4 * head_dim flops per query head and key: q.k and p*v);
//  - encode_image with 2 local layers and 1 global layer (the 11B has 32 and 8; its time scales
//    with the layer count), for a 1-tile and a 4-tile image. Both cost about the same: the
//    reference runs every image as max_tiles tiles.
// Run: build/bench/llama3_bench --benchmark_filter=Vision
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/dense_attention.h"
#include "vision/vision_encoder.h"
#include "vision/vision_weights.h"

namespace {

using namespace llama3;

void VisionDenseAttention(benchmark::State& state) {
  constexpr int64_t kHeads = 16, kHd = 80, kKeys = 6432;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(kKeys * kHeads * kHd)), kt(q.size()), v(q.size()), out(q.size());
  for (auto* buf : {&q, &kt, &v}) {
    for (auto& x : *buf) x = dist(rng);
  }
  const std::vector<kernels::QueryRun> runs = {{0, kKeys, 0, kKeys}};
  kernels::DenseAttention job;
  job.q = q.data(), job.q_stride = kHeads * kHd, job.out = out.data(), job.out_stride = kHeads * kHd;
  job.n_heads = kHeads, job.n_kv_heads = kHeads, job.head_dim = kHd;
  job.kt = kt.data(), job.v = v.data(), job.key_stride = kKeys, job.scale = 0.1f, job.runs = runs;
  for (auto _ : state) kernels::dense_attention(job);
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * kHd * kHeads * kKeys * kKeys * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(VisionDenseAttention)->Unit(benchmark::kMillisecond)->UseRealTime();

// Second argument 1: the 8-bit matrices the performance and accuracy modes run; rel_err is
// their tokens' relative RMS difference from the bf16 matrices' on the same image.
void VisionEncoderThreeLayers(benchmark::State& state) {
  vision::VisionConfig c;
  c.width = 1280, c.layers = 2, c.global_layers = 1, c.intermediate_layers = {0, 1}, c.output_dim = 4096;
  static const vision::VisionWeights bf16 = vision::random_vision_weights(c, 1);
  static const vision::VisionWeights q8 = [&] {
    vision::VisionWeights w = vision::random_vision_weights(c, 1);
    vision::quantize_vision_matrices(w);
    return w;
  }();
  const int64_t tiles = state.range(0);
  const int64_t side = tiles == 4 ? 2 : 1;
  std::vector<float> pixels(static_cast<size_t>(tiles * 3 * c.tile_size * c.tile_size));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.8f, 2.1f);  // CLIP-normalized pixel range
  for (auto& p : pixels) p = dist(rng);
  const vision::VisionWeights& w = state.range(1) ? q8 : bf16;
  vision::EncodedImage e;
  for (auto _ : state) {
    e = vision::encode_image(c, w, pixels, side, side);
    benchmark::DoNotOptimize(e.tokens.data());
  }
  if (state.range(1)) {
    const auto ref = vision::encode_image(c, bf16, pixels, side, side);
    double err = 0, norm = 0;
    for (size_t i = 0; i < ref.tokens.size(); ++i) {
      err += (e.tokens[i] - ref.tokens[i]) * double(e.tokens[i] - ref.tokens[i]);
      norm += ref.tokens[i] * double(ref.tokens[i]);
    }
    state.counters["rel_err"] = std::sqrt(err / norm);
  }
}
BENCHMARK(VisionEncoderThreeLayers)
    ->Args({1, 0})->Args({4, 0})->Args({1, 1})->Args({4, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
