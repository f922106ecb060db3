// Llama 3.2 Vision's side of the forward pass (llama_model.h): a request's images turned into
// every cross-attention layer's keys and values once, and the cross-attention layers themselves
// (Meta's CrossAttentionTransformerBlock), which run before the self-attention layers of the
// fusion schedule.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/parallel.h"
#include "core/timer.h"
#include "kernels/dense_attention.h"
#include "kernels/elementwise.h"
#include "model/forward_rows.h"
#include "model/llama_model.h"
#include "vision/vision_encoder.h"

namespace llama3::model {

using detail::ensure;
using detail::parallel_rows;

CrossAttentionContext LlamaModel::image_context(std::span<const vision::ImageTiles> images,
                                                std::span<const int32_t> prompt) {
  const ModelConfig& c = config_;
  check(c.has_vision() || images.empty(), "{} is a text-only model: it takes no images", c.name);
  std::vector<int64_t> positions;
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] == c.image_token_id()) positions.push_back(static_cast<int64_t>(i));
  }
  check(positions.size() == images.size(),
        "the prompt has {} image tokens (<|image|>, id {}) for {} images: each image needs one, in order",
        positions.size(), c.image_token_id(), images.size());
  CrossAttentionContext ctx;
  if (images.empty()) return ctx;
  // The image encoder, then all images' projected tokens in order: [tokens][dim].
  const Timer timer;
  std::vector<float> tokens;
  std::vector<int64_t> counts;
  for (const vision::ImageTiles& image : images) {
    const vision::EncodedImage e = vision::encode_image(c.vision, weights_.vision, image.pixels, image.tiles_h,
                                                        image.tiles_w);
    tokens.insert(tokens.end(), e.tokens.begin(), e.tokens.end());
    counts.push_back(e.tiles * e.tokens_per_tile);
  }
  encoder_seconds_ += timer.seconds();
  const int64_t n = static_cast<int64_t>(tokens.size()) / c.dim;
  const int64_t hd = c.head_dim, n_kv = c.n_kv_heads, kv_dim = n_kv * hd;
  const float eps = static_cast<float>(c.norm_eps);
  ctx.image_tokens = n;
  ctx.visibility = image_visibility(positions, counts);
  std::vector<float> k(static_cast<size_t>(n * kv_dim)), v(k.size());
  for (const CrossLayerWeights& x : weights_.cross_layers) {
    project(tokens.data(), n, {{&x.wk, k.data()}, {&x.wv, v.data()}});
    std::vector<float>& kt = ctx.kt.emplace_back(static_cast<size_t>(n * kv_dim));
    std::vector<float>& vr = ctx.v.emplace_back(static_cast<size_t>(n * kv_dim));
    parallel_rows(n, [&](int64_t t0, int64_t t1) {
      std::vector<float> normed(static_cast<size_t>(hd));
      for (int64_t t = t0; t < t1; ++t) {
        for (int64_t h = 0; h < n_kv; ++h) {
          const float* kh = k.data() + t * kv_dim + h * hd;
          kernels::rmsnorm(kh, x.k_norm.data(), normed.data(), hd, eps);
          for (int64_t d = 0; d < hd; ++d) kt[static_cast<size_t>((h * hd + d) * n + t)] = normed[static_cast<size_t>(d)];
          std::copy_n(v.data() + t * kv_dim + h * hd, hd, vr.data() + (h * n + t) * hd);
        }
      }
    });
  }
  return ctx;
}

void LlamaModel::cross_layer(int64_t index, std::span<const BatchItem> batch) {
  const ModelConfig& c = config_;
  const CrossLayerWeights& w = weights_.cross_layers[static_cast<size_t>(index)];
  const int64_t T = tokens_, dim = c.dim, hd = c.head_dim;
  const int64_t q_dim = c.n_heads * hd;
  const float eps = static_cast<float>(c.norm_eps);
  ensure(s_.xn, T * dim);
  ensure(s_.q, T * q_dim);
  ensure(s_.attn, T * q_dim);
  ensure(s_.out, T * dim);
  ensure(s_.h1, T * c.ffn_dim);
  ensure(s_.h3, T * c.ffn_dim);
  row_sees_image_.assign(static_cast<size_t>(T), 0);

  parallel_for(static_cast<size_t>(T), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t)
      kernels::rmsnorm(s_.x.data() + t * dim, w.attention_norm.data(), s_.xn.data() + t * dim, dim, eps);
  });
  project(s_.xn.data(), T, {{&w.wq, s_.q.data()}});
  parallel_rows(T, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t h = 0; h < c.n_heads; ++h) {
        float* qh = s_.q.data() + t * q_dim + h * hd;
        kernels::rmsnorm(qh, w.q_norm.data(), qh, hd, eps);
      }
    }
  });
  // Each item's rows against its own images, in runs of rows that see the same image tokens;
  // rows that see none get zeros (and leave the residual unchanged below).
  std::fill(s_.attn.begin(), s_.attn.begin() + T * q_dim, 0.0f);
  int64_t first_row = 0;
  for (const BatchItem& item : batch) {
    const auto n = static_cast<int64_t>(item.tokens.size());
    if (item.images) {
      std::vector<kernels::QueryRun> runs;
      for (int64_t j = 0; j < n; ++j) {
        const auto seen = item.images->at(item.start_pos + j);
        if (seen.key_end <= seen.key_begin) continue;
        row_sees_image_[static_cast<size_t>(first_row + j)] = 1;
        if (!runs.empty() && runs.back().first_row + runs.back().n_rows == first_row + j &&
            runs.back().key_begin == seen.key_begin && runs.back().key_end == seen.key_end) {
          ++runs.back().n_rows;
        } else {
          runs.push_back({first_row + j, 1, seen.key_begin, seen.key_end});
        }
      }
      if (!runs.empty()) {
        kernels::DenseAttention job;
        job.q = s_.q.data(), job.q_stride = q_dim, job.out = s_.attn.data(), job.out_stride = q_dim;
        job.n_heads = c.n_heads, job.n_kv_heads = c.n_kv_heads, job.head_dim = hd;
        job.kt = item.images->kt[static_cast<size_t>(index)].data();
        job.v = item.images->v[static_cast<size_t>(index)].data();
        job.key_stride = item.images->image_tokens;
        job.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
        job.runs = runs;
        kernels::dense_attention(job);
      }
    }
    first_row += n;
  }
  // x += tanh(gate) * f(x) for the rows that see an image, for the attention and then the MLP.
  auto add_gated = [&](float gate) {
    const float g = std::tanh(gate);
    parallel_rows(T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        if (!row_sees_image_[static_cast<size_t>(t)]) continue;
        float* x = s_.x.data() + t * dim;
        const float* o = s_.out.data() + t * dim;
        for (int64_t d = 0; d < dim; ++d) x[d] += g * o[d];
      }
    });
  };
  project(s_.attn.data(), T, {{&w.wo, s_.out.data()}});
  add_gated(w.gate_attn);

  parallel_for(static_cast<size_t>(T), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t)
      kernels::rmsnorm(s_.x.data() + t * dim, w.ffn_norm.data(), s_.xn.data() + t * dim, dim, eps);
  });
  project(s_.xn.data(), T, {{&w.w1, s_.h1.data()}, {&w.w3, s_.h3.data()}});
  parallel_rows(T * c.ffn_dim, [&](int64_t i0, int64_t i1) {
    kernels::silu_mul(s_.h1.data() + i0, s_.h3.data() + i0, i1 - i0);
  }, 1 << 15);
  project(s_.h1.data(), T, {{&w.w2, s_.out.data()}});
  add_gated(w.gate_ffn);
}

}  // namespace llama3::model
