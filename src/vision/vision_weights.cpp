#include "vision/vision_weights.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/quant_blocks.h"
#include "core/splitmix.h"
#include "kernels/quant_pack.h"
#include "vision/image_preprocess.h"

namespace llama3::vision {

const CanvasEmbedding& VisionWeights::find(const std::vector<CanvasEmbedding>& all, int64_t tiles_h, int64_t tiles_w,
                                           const char* what) {
  for (const CanvasEmbedding& e : all) {
    if (e.tiles_h == tiles_h && e.tiles_w == tiles_w) return e;
  }
  fail("vision encoder: the weights have no {} for a canvas of {}x{} tiles", what, tiles_h, tiles_w);
}

namespace {

void expect_size(size_t got, int64_t want, const std::string& what) {
  check(static_cast<int64_t>(got) == want, "vision weights: {} has {} values, the config needs {}", what, got, want);
}

void expect_matrix(const Bf16Matrix& m, int64_t rows, int64_t cols, const std::string& what) {
  const bool whole = m.format == kernels::WeightFormat::BF16
                         ? static_cast<int64_t>(m.values.size()) == rows * cols
                         : m.packed.size() == kernels::packed_bytes(m.format, rows, cols);
  check(m.rows == rows && m.cols == cols && whole, "vision weights: {} is [{}][{}], the config needs [{}][{}]", what,
        m.rows, m.cols, rows, cols);
}

void expect_canvases(const std::vector<CanvasEmbedding>& all, const VisionConfig& c, int64_t rows, const char* what) {
  for (const auto& [h, w] : supported_canvases(c.max_tiles)) {
    expect_size(VisionWeights::find(all, h, w, what).values.size(), c.max_tiles * rows * c.width,
                fmt::format("{} of canvas {}x{}", what, h, w));
  }
}

}  // namespace

void VisionWeights::validate(const VisionConfig& c) const {
  const int64_t w = c.width, n = c.tokens_per_tile();
  expect_matrix(patch_embedding, w, 3 * c.patch_size * c.patch_size, "the patch embedding");
  expect_size(class_embedding.size(), w, "the class embedding");
  expect_size(positional.size(), n * w, "the positional embedding");
  expect_canvases(tile_positional, c, n, "tile positional embedding");
  expect_canvases(pre_tile, c, 1, "pre-tile embedding");
  expect_canvases(post_tile, c, 1, "post-tile embedding");
  for (const LayerNormWeights* ln : {&ln_pre, &ln_post}) {
    expect_size(ln->weight.size(), w, "a layer norm");
    expect_size(ln->bias.size(), w, "a layer norm's bias");
  }
  check(static_cast<int64_t>(layers.size()) == c.layers && static_cast<int64_t>(global_layers.size()) == c.global_layers,
        "vision weights: {} local and {} global layers, the config says {} and {}", layers.size(),
        global_layers.size(), c.layers, c.global_layers);
  for (const auto* list : {&layers, &global_layers}) {
    for (const VisionLayerWeights& l : *list) {
      for (const Bf16Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo}) expect_matrix(*m, w, w, "an attention matrix");
      expect_matrix(l.fc1, c.ffn_dim, w, "an MLP's fc1");
      expect_matrix(l.fc2, w, c.ffn_dim, "an MLP's fc2");
      expect_size(l.fc1_bias.size(), c.ffn_dim, "an MLP's fc1 bias");
      expect_size(l.fc2_bias.size(), w, "an MLP's fc2 bias");
      for (const LayerNormWeights* ln : {&l.ln_1, &l.ln_2}) {
        expect_size(ln->weight.size(), w, "a layer norm");
        expect_size(ln->bias.size(), w, "a layer norm's bias");
      }
    }
  }
  expect_matrix(projection, c.output_dim, c.features(), "the projection");
  expect_size(projection_bias.size(), c.output_dim, "the projection's bias");
}

void quantize_vision_matrices(VisionWeights& w) {
  auto quantize = [](Bf16Matrix& m) {
    if (m.format != kernels::WeightFormat::BF16 || m.cols % kernels::kQuantBlock != 0) return;
    const int64_t blocks = m.cols / kernels::kQuantBlock;
    std::vector<BlockQ8_0> ggml(static_cast<size_t>(m.rows * blocks));
    parallel_for(static_cast<size_t>(m.rows), [&](size_t r0, size_t r1) {
      std::vector<float> row(static_cast<size_t>(m.cols));
      for (size_t r = r0; r < r1; ++r) {
        for (int64_t c = 0; c < m.cols; ++c) row[static_cast<size_t>(c)] = bf16_to_f32(m.values[r * m.cols + c]);
        quantize_row_q8_0(row, std::span(ggml).subspan(r * blocks, static_cast<size_t>(blocks)));
      }
    });
    m.packed.resize(kernels::packed_bytes(kernels::WeightFormat::Q8_0, m.rows, m.cols));
    kernels::pack_ggml_rows(kernels::WeightFormat::Q8_0, std::as_bytes(std::span(ggml)), m.rows, m.cols, m.packed);
    m.format = kernels::WeightFormat::Q8_0;
    m.values = {};
  };
  quantize(w.projection);
  for (auto* list : {&w.layers, &w.global_layers}) {
    for (VisionLayerWeights& l : *list) {
      for (Bf16Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.fc1, &l.fc2}) quantize(*m);
    }
  }
}

namespace {

class RandomStream {
 public:
  explicit RandomStream(uint64_t seed) : state_(splitmix64(seed ^ 0x766973696f6eull)) {}  // "vision"
  // n values uniform with the given std (bf16-representable, as a checkpoint's are).
  std::vector<float> floats(int64_t n, double stddev, float center = 0.0f) {
    const uint64_t base = next();
    const auto half = static_cast<float>(stddev * std::sqrt(3.0));
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const float u = static_cast<float>(splitmix64(base ^ static_cast<uint64_t>(i)) >> 40) * 0x1p-24f;
      v[static_cast<size_t>(i)] = bf16_to_f32(f32_to_bf16(center + (2.0f * u - 1.0f) * half));
    }
    return v;
  }
  Bf16Matrix matrix(int64_t rows, int64_t cols) {
    const std::vector<float> f = floats(rows * cols, 1.0 / std::sqrt(static_cast<double>(cols)));
    Bf16Matrix m{std::vector<uint16_t>(f.size()), rows, cols};
    for (size_t i = 0; i < f.size(); ++i) m.values[i] = f32_to_bf16(f[i]);
    return m;
  }
  float gate() { return floats(1, 1.0 / std::sqrt(3.0))[0]; }  // uniform in [-1, 1]

 private:
  uint64_t next() { return state_ = splitmix64(state_); }
  uint64_t state_;
};

}  // namespace

VisionWeights random_vision_weights(const VisionConfig& c, uint64_t seed) {
  c.validate();
  RandomStream r(seed);
  VisionWeights w;
  const int64_t d = c.width, n = c.tokens_per_tile();
  const double embed_std = 0.02 * std::sqrt(static_cast<double>(d));
  w.patch_embedding = r.matrix(d, 3 * c.patch_size * c.patch_size);
  w.class_embedding = r.floats(d, embed_std);
  w.positional = r.floats(n * d, embed_std);
  // As Meta's grid holds them: one value per (row, column) of tiles, shared by every canvas that
  // has the tile, and zero for the empty tiles.
  auto grid = [&](int64_t rows) {
    const std::vector<float> g = r.floats(c.max_tiles * c.max_tiles * rows * d, embed_std);
    std::vector<CanvasEmbedding> out;
    for (const auto& [th, tw] : supported_canvases(c.max_tiles)) {
      CanvasEmbedding e{th, tw, std::vector<float>(static_cast<size_t>(c.max_tiles * rows * d), 0.0f)};
      for (int64_t t = 0; t < th * tw; ++t) {
        const int64_t cell = (t / tw) * c.max_tiles + t % tw;
        std::copy_n(g.begin() + cell * rows * d, rows * d, e.values.begin() + t * rows * d);
      }
      out.push_back(std::move(e));
    }
    return out;
  };
  w.tile_positional = grid(n);
  w.pre_tile = grid(1);
  w.post_tile = grid(1);
  w.tile_positional_gate = r.gate(), w.pre_tile_gate = r.gate(), w.post_tile_gate = r.gate();
  auto norm = [&] { return LayerNormWeights{r.floats(d, 0.1, 1.0f), r.floats(d, 0.1)}; };
  w.ln_pre = norm(), w.ln_post = norm();
  auto layer = [&](bool gated) {
    VisionLayerWeights l;
    l.ln_1 = norm(), l.ln_2 = norm();
    l.wq = r.matrix(d, d), l.wk = r.matrix(d, d), l.wv = r.matrix(d, d), l.wo = r.matrix(d, d);
    l.fc1 = r.matrix(c.ffn_dim, d), l.fc2 = r.matrix(d, c.ffn_dim);
    l.fc1_bias = r.floats(c.ffn_dim, 0.1), l.fc2_bias = r.floats(d, 0.1);
    l.gated = gated;
    if (gated) l.gate_attn = r.gate(), l.gate_ffn = r.gate();
    return l;
  };
  for (int64_t i = 0; i < c.layers; ++i) w.layers.push_back(layer(false));
  for (int64_t i = 0; i < c.global_layers; ++i) w.global_layers.push_back(layer(true));
  w.projection = r.matrix(c.output_dim, c.features());
  w.projection_bias = r.floats(c.output_dim, 0.1);
  return w;
}

}  // namespace llama3::vision
