#include "vision/vision_encoder.h"

#include <cmath>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/dense_attention.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/quant_matmul.h"

namespace llama3::vision {
namespace {

// y[r] = W x[r] (+ bias) for `rows` rows; x [rows][W.cols], y [rows][W.rows]. 8-bit matrices
// quantize x per 32 values first (`xq`, reused).
void linear(const Bf16Matrix& w, const float* x, int64_t rows, float* y, kernels::QuantizedActivations& xq,
            const std::vector<float>* bias = nullptr) {
  if (w.format == kernels::WeightFormat::BF16) {
    kernels::matmul_bf16(kernels::MatmulJob{w.values.data(), w.rows, w.cols, x, w.cols, y, w.rows, rows});
  } else {
    kernels::quantize_activations(x, w.cols, rows, w.cols, xq);
    kernels::matmul_q(kernels::QMatmulJob{{w.format, w.packed.data(), w.rows, w.cols}, &xq, y, w.rows});
  }
  if (bias && !bias->empty()) {
    parallel_for(static_cast<size_t>(rows), [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) kernels::add_inplace(y + r * static_cast<size_t>(w.rows), bias->data(), w.rows);
    });
  }
}

void layer_norm(const LayerNormWeights& ln, const float* x, float* y, int64_t rows, int64_t width, float eps) {
  parallel_for(static_cast<size_t>(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      kernels::layernorm(x + r * width, ln.weight.data(), ln.bias.data(), y + r * width, width, eps);
    }
  });
}

// x += gate * y over n values.
void add_scaled(float* x, const float* y, int64_t n, float gate) {
  parallel_for(static_cast<size_t>(n), [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) x[i] += gate * y[i];
  }, 1024);
}

// The encoder's activations over the S = max_tiles * padded tokens of one image.
class Encoder {
 public:
  Encoder(const VisionConfig& c, const VisionWeights& w, int64_t tiles_h, int64_t tiles_w)
      : c_(c), w_(w), th_(tiles_h), tw_(tiles_w), real_(tiles_h * tiles_w), n_(c.tokens_per_tile()),
        p_(c.padded_tokens_per_tile()), s_(c.max_tiles * p_), width_(c.width) {
    x_.assign(static_cast<size_t>(s_ * width_), 0.0f);
    h_.resize(x_.size()), q_.resize(x_.size()), k_.resize(x_.size()), v_.resize(x_.size()), attn_.resize(x_.size());
    kt_.resize(x_.size()), vr_.resize(x_.size());
    ffn_.resize(static_cast<size_t>(s_ * c.ffn_dim));
    build_attention_layout();
  }

  EncodedImage run(std::span<const float> pixels) {
    embed(pixels);
    const int64_t n_int = static_cast<int64_t>(c_.intermediate_layers.size());
    const int64_t features = c_.features();
    feats_.assign(static_cast<size_t>(real_ * n_ * features), 0.0f);
    size_t next_int = 0;
    for (int64_t l = 0; l < c_.layers; ++l) {
      if (next_int < c_.intermediate_layers.size() && c_.intermediate_layers[next_int] == l) {
        // The layer's input, interleaved: feature d of intermediate m at width + d * n_int + m.
        for_real_tokens([&](int64_t token, int64_t out_row) {
          const float* x = x_.data() + token * width_;
          float* f = feats_.data() + out_row * features + width_;
          for (int64_t d = 0; d < width_; ++d) f[d * n_int + static_cast<int64_t>(next_int)] = x[d];
        });
        ++next_int;
      }
      layer(w_.layers[static_cast<size_t>(l)]);
    }
    layer_norm(w_.ln_post, x_.data(), x_.data(), s_, width_, eps());
    add_tile_embedding(w_.post_tile, w_.post_tile_gate, 0, p_);
    for (const VisionLayerWeights& g : w_.global_layers) layer(g);
    for_real_tokens([&](int64_t token, int64_t out_row) {
      std::copy_n(x_.data() + token * width_, width_, feats_.data() + out_row * features);
    });
    EncodedImage out{real_, n_, std::vector<float>(static_cast<size_t>(real_ * n_ * c_.output_dim))};
    linear(w_.projection, feats_.data(), real_ * n_, out.tokens.data(), xq_, &w_.projection_bias);
    return out;
  }

 private:
  float eps() const { return static_cast<float>(c_.norm_eps); }

  // fn(token index in x, row in the output) for the real tiles' first n tokens.
  template <typename Fn>
  void for_real_tokens(Fn&& fn) {
    for (int64_t t = 0; t < real_; ++t) {
      for (int64_t i = 0; i < n_; ++i) fn(t * p_ + i, t * n_ + i);
    }
  }

  // Keys real-first: the real tiles' n tokens, then every padding or empty-tile token, so that
  // each query's keys are a range (dense_attention.h).
  void build_attention_layout() {
    key_of_.resize(static_cast<size_t>(s_));
    const int64_t real_keys = real_ * n_;
    int64_t other = real_keys;
    for (int64_t t = 0; t < c_.max_tiles; ++t) {
      for (int64_t i = 0; i < p_; ++i) {
        const bool real = t < real_ && i < n_;
        key_of_[static_cast<size_t>(t * p_ + i)] = real ? t * n_ + i : other++;
      }
    }
    // Real tokens see every key; the others see only the real ones (Meta's mask: a pair of two
    // non-real tokens is masked out).
    for (int64_t t = 0; t < c_.max_tiles; ++t) {
      if (t < real_) {
        runs_.push_back({t * p_, n_, 0, s_});
        if (p_ > n_) runs_.push_back({t * p_ + n_, p_ - n_, 0, real_keys});
      } else {
        runs_.push_back({t * p_, p_, 0, real_keys});
      }
    }
  }

  // x += tanh(gate) * the canvas's embedding of each tile (all max_tiles of them), over the tile's
  // tokens [first, first + count).
  void add_tile_embedding(const std::vector<CanvasEmbedding>& all, float gate, int64_t first, int64_t count) {
    const CanvasEmbedding& e = VisionWeights::find(all, th_, tw_, "tile embedding");
    const float g = std::tanh(gate);
    for (int64_t t = 0; t < c_.max_tiles; ++t) {
      const float* emb = e.values.data() + t * width_;
      for (int64_t i = first; i < first + count; ++i) {
        float* x = x_.data() + (t * p_ + i) * width_;
        for (int64_t d = 0; d < width_; ++d) x[d] += g * emb[d];
      }
    }
  }

  void embed(std::span<const float> pixels) {
    const int64_t ps = c_.patch_size, grid = c_.grid(), ts = c_.tile_size, cols = 3 * ps * ps;
    check(static_cast<int64_t>(pixels.size()) == real_ * 3 * ts * ts,
          "vision encoder: {} pixel values for {} tiles of {}x{}", pixels.size(), real_, ts, ts);
    // Patches (unfolded in the conv weight's (channel, y, x) order) through the patch matrix; the
    // empty tiles' patches are zero (the conv has no bias).
    std::vector<float> patches(static_cast<size_t>(grid * grid * cols));
    std::vector<float> embedded(static_cast<size_t>(grid * grid * width_));
    for (int64_t t = 0; t < real_; ++t) {
      const float* tile = pixels.data() + t * 3 * ts * ts;
      for (int64_t py = 0; py < grid; ++py) {
        for (int64_t px = 0; px < grid; ++px) {
          float* row = patches.data() + (py * grid + px) * cols;
          for (int64_t ch = 0; ch < 3; ++ch) {
            for (int64_t y = 0; y < ps; ++y) {
              std::copy_n(tile + (ch * ts + py * ps + y) * ts + px * ps, ps, row + (ch * ps + y) * ps);
            }
          }
        }
      }
      linear(w_.patch_embedding, patches.data(), grid * grid, embedded.data(), xq_);
      std::copy(embedded.begin(), embedded.end(), x_.begin() + (t * p_ + 1) * width_);
    }
    add_tile_embedding(w_.pre_tile, w_.pre_tile_gate, 1, grid * grid);  // patches only: before the class token
    const float g = std::tanh(w_.tile_positional_gate);
    const CanvasEmbedding& tile_pos = VisionWeights::find(w_.tile_positional, th_, tw_, "tile positional embedding");
    for (int64_t t = 0; t < c_.max_tiles; ++t) {
      float* x = x_.data() + t * p_ * width_;
      std::copy(w_.class_embedding.begin(), w_.class_embedding.end(), x);
      const float* e = tile_pos.values.data() + t * n_ * width_;
      for (int64_t i = 0; i < n_ * width_; ++i) x[i] += (1.0f - g) * w_.positional[static_cast<size_t>(i)];
      for (int64_t i = 0; i < n_ * width_; ++i) x[i] += g * e[i];
    }
    // ln_pre over each tile's tokens; the padding tokens enter the transformer as zeros.
    for (int64_t t = 0; t < c_.max_tiles; ++t) {
      float* x = x_.data() + t * p_ * width_;
      layer_norm(w_.ln_pre, x, x, n_, width_, eps());
    }
  }

  void layer(const VisionLayerWeights& l) {
    const int64_t hd = c_.head_dim();
    layer_norm(l.ln_1, x_.data(), h_.data(), s_, width_, eps());
    if (l.wq.format == kernels::WeightFormat::BF16) {  // one fork-join for the three
      kernels::MatmulJob jobs[3] = {
          {l.wq.values.data(), width_, width_, h_.data(), width_, q_.data(), width_, s_},
          {l.wk.values.data(), width_, width_, h_.data(), width_, k_.data(), width_, s_},
          {l.wv.values.data(), width_, width_, h_.data(), width_, v_.data(), width_, s_},
      };
      kernels::matmul_bf16(jobs);
    } else {  // x quantized once for the three
      kernels::quantize_activations(h_.data(), width_, s_, width_, xq_);
      kernels::QMatmulJob jobs[3] = {{{l.wq.format, l.wq.packed.data(), width_, width_}, &xq_, q_.data(), width_},
                                     {{l.wk.format, l.wk.packed.data(), width_, width_}, &xq_, k_.data(), width_},
                                     {{l.wv.format, l.wv.packed.data(), width_, width_}, &xq_, v_.data(), width_}};
      kernels::matmul_q(jobs);
    }
    // K transposed per head and V by rows, both in the real-first key order.
    parallel_for(static_cast<size_t>(s_), [&](size_t t0, size_t t1) {
      for (size_t t = t0; t < t1; ++t) {
        const int64_t key = key_of_[t];
        for (int64_t h = 0; h < c_.heads; ++h) {
          for (int64_t d = 0; d < hd; ++d) {
            kt_[static_cast<size_t>((h * hd + d) * s_ + key)] = k_[t * width_ + h * hd + d];
          }
          std::copy_n(v_.data() + t * width_ + h * hd, hd, vr_.data() + (h * s_ + key) * hd);
        }
      }
    });
    kernels::DenseAttention job;
    job.q = q_.data(), job.q_stride = width_, job.out = attn_.data(), job.out_stride = width_;
    job.n_heads = c_.heads, job.n_kv_heads = c_.heads, job.head_dim = hd;
    job.kt = kt_.data(), job.v = vr_.data(), job.key_stride = s_;
    job.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    job.runs = runs_;
    kernels::dense_attention(job);
    linear(l.wo, attn_.data(), s_, h_.data(), xq_);
    add_scaled(x_.data(), h_.data(), s_ * width_, l.gated ? std::tanh(l.gate_attn) : 1.0f);

    layer_norm(l.ln_2, x_.data(), h_.data(), s_, width_, eps());
    linear(l.fc1, h_.data(), s_, ffn_.data(), xq_, &l.fc1_bias);
    parallel_for(static_cast<size_t>(s_), [&](size_t t0, size_t t1) {
      kernels::gelu(ffn_.data() + t0 * c_.ffn_dim, static_cast<int64_t>(t1 - t0) * c_.ffn_dim);
    });
    linear(l.fc2, ffn_.data(), s_, h_.data(), xq_, &l.fc2_bias);
    add_scaled(x_.data(), h_.data(), s_ * width_, l.gated ? std::tanh(l.gate_ffn) : 1.0f);
  }

  const VisionConfig& c_;
  const VisionWeights& w_;
  int64_t th_, tw_, real_, n_, p_, s_, width_;
  std::vector<float> x_, h_, q_, k_, v_, attn_, kt_, vr_, ffn_, feats_;
  std::vector<int64_t> key_of_;
  std::vector<kernels::QueryRun> runs_;
  kernels::QuantizedActivations xq_;  // x quantized for the 8-bit matrices
};

}  // namespace

EncodedImage encode_image(const VisionConfig& config, const VisionWeights& weights, std::span<const float> pixels,
                          int64_t tiles_h, int64_t tiles_w) {
  check(tiles_h >= 1 && tiles_w >= 1 && tiles_h * tiles_w <= config.max_tiles,
        "vision encoder: a canvas of {}x{} tiles exceeds the model's {} tiles", tiles_h, tiles_w, config.max_tiles);
  Encoder encoder(config, weights, tiles_h, tiles_w);
  return encoder.run(pixels);
}

}  // namespace llama3::vision
