#include "model/llama_model.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <numeric>
#include <utility>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/timer.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/quant_matmul.h"
#include "model/batch_broadcast.h"
#include "model/forward_rows.h"
#include "model/rope.h"

namespace llama3::model {

using detail::ensure;
using detail::parallel_rows;
using kernels::MatmulJob;
using kernels::WeightFormat;

LlamaModel::LlamaModel(ModelConfig config, ModelWeights weights, dist::Communicator* group)
    : config_(std::move(config)), weights_(std::move(weights)), group_(group), rope_freqs_(rope_frequencies(config_)) {
  config_.validate();
  check(static_cast<int64_t>(weights_.layers.size()) == config_.n_layers,
        "model has {} layers of weights but the config says {}", weights_.layers.size(), config_.n_layers);
  const int ranks = group_ ? group_->size() : 1;
  shard_ = shard_plan(config_, weights_.shard.rank, weights_.shard.ranks);
  check(shard_.ranks == ranks && (!group_ || shard_.rank == group_->rank()),
        "the weights are those of {} but this rank is rank {} of a group of {}", shard_.describe(),
        group_ ? group_->rank() : 0, ranks);
  check(weights_.cross_layers.size() == config_.cross_attention_before.size(),
        "model has {} cross-attention layers of weights but the config places {}", weights_.cross_layers.size(),
        config_.cross_attention_before.size());
  check(!config_.has_vision() || ranks == 1, "vision models run on one rank; a mesh of {} was asked for", ranks);
  check(!config_.has_vision() ||
            static_cast<int64_t>(weights_.extra_embeddings.size()) == config_.extra_embeddings * config_.dim,
        "model has {} extra embedding values but the config needs {} rows", weights_.extra_embeddings.size(),
        config_.extra_embeddings);
  if (config_.has_vision()) weights_.vision.validate(config_.vision);
}

size_t LlamaModel::activation_bytes(const ModelConfig& c, int64_t tokens, int64_t logit_rows) {
  const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  // x, xn, q, k, v, attn, out, h1, h3, cos, sin (ensure() calls below), as floats.
  const int64_t floats = tokens * (3 * c.dim + 2 * q_dim + 2 * kv_dim + 2 * c.ffn_dim + c.head_dim);
  // int8 values with a scale and sum per 32 (activation_quant.h), at the widest input (ffn_dim).
  const int64_t quantized = tokens * (c.ffn_dim + c.ffn_dim / 32 * 8);
  const int64_t logits = logit_rows * c.vocab_size * 4;
  return static_cast<size_t>(floats * 4 + quantized + logits);
}

void LlamaModel::follow() {
  check(group_ && group_->rank() != 0, "follow: only ranks other than 0 of a mesh follow");
  ReceivedBatch batch;
  std::vector<float> logits;
  std::vector<std::pair<CacheShape, std::unique_ptr<KvCache>>> caches;
  const ModelConfig config = kv_config();
  while (receive_batch(*group_, batch)) {
    auto it = std::find_if(caches.begin(), caches.end(), [&](const auto& c) { return c.first.id == batch.cache.id; });
    if (it != caches.end() && !(it->first == batch.cache)) {  // the leader freed one and made another there
      caches.erase(it);
      it = caches.end();
    }
    if (it == caches.end()) {
      caches.emplace_back(batch.cache, std::make_unique<KvCache>(config, batch.cache.num_blocks,
                                                                 batch.cache.block_size, batch.cache.dtype));
      it = caches.end() - 1;
    }
    logit_candidates_ = batch.logit_candidates;
    forward(batch.items, *it->second, logits);
  }
}

LlamaModel::~LlamaModel() {
  // Not while an exception unwinds: a pass may have stopped between collectives, and a stop
  // message would meet the followers in another one; main then ends every rank (abort_job).
  if (std::uncaught_exceptions() == 0) {
    try {
      release_followers();
    } catch (const std::exception&) {  // a destructor must not throw; the job ends anyway
    }
  }
}

void LlamaModel::release_followers() {
  if (!leads_followers_) return;
  leads_followers_ = false;
  broadcast_stop(*group_);
}

void LlamaModel::forward(std::span<const BatchItem> batch, KvCache& cache, std::vector<float>& logits) {
  const ModelConfig& c = config_;
  // Flatten the batch into tokens with their positions.
  int64_t total = 0;
  int64_t logit_rows = 0;
  for (const auto& item : batch) {
    check(!item.tokens.empty(), "forward: a batch item has no tokens");
    const int64_t end = item.start_pos + static_cast<int64_t>(item.tokens.size());
    check(item.start_pos >= 0 && item.rope_offset >= 0 && end + item.rope_offset <= c.max_seq_len,
          "forward: positions up to {} exceed max_seq_len {}", end + item.rope_offset, c.max_seq_len);
    check(static_cast<int64_t>(item.block_table.size()) * cache.block_size() >= end,
          "forward: block table covers {} positions, sequence needs {}",
          item.block_table.size() * cache.block_size(), end);
    for (int32_t block : item.block_table) {
      check(block >= 0 && block < cache.num_blocks(), "forward: block id {} outside the pool of {}", block,
            cache.num_blocks());
    }
    total += static_cast<int64_t>(item.tokens.size());
    logit_rows += item.all_logits ? static_cast<int64_t>(item.tokens.size()) : 1;
    for (int32_t id : item.tokens) {
      check(id >= 0 && id < c.embedding_rows(), "token id {} is outside the vocabulary (0..{})", id,
            c.embedding_rows() - 1);
    }
    check(!item.images || c.has_vision(), "forward: images given to a text-only model");
  }
  // Only a batch every rank can run goes to the followers: a refused one stays a local error.
  if (leads_followers_) {
    const CacheShape shape{static_cast<int64_t>(reinterpret_cast<uintptr_t>(&cache)), cache.num_blocks(),
                           cache.block_size(), cache.dtype()};
    const Timer timer;
    broadcast_batch(*group_, shape, batch, logit_candidates_);
    stats_.seconds += timer.seconds();
    ++stats_.broadcasts;
  }
  tokens_ = total;
  const int64_t dim = c.dim;
  const int64_t half = c.head_dim / 2;
  ensure(s_.x, total * dim);
  ensure(s_.cos, total * half);
  ensure(s_.sin, total * half);
  s_.pos.resize(static_cast<size_t>(total));
  s_.item_of.resize(static_cast<size_t>(total));

  // Per-token positions and RoPE angles (shared by all layers and heads), then the embedding.
  int64_t t = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    for (size_t j = 0; j < batch[i].tokens.size(); ++j, ++t) {
      s_.pos[static_cast<size_t>(t)] = batch[i].start_pos + static_cast<int64_t>(j);
      s_.item_of[static_cast<size_t>(t)] = static_cast<int32_t>(i);
      rope_cos_sin(rope_freqs_, s_.pos[static_cast<size_t>(t)] + batch[i].rope_offset, s_.cos.data() + t * half,
                   s_.sin.data() + t * half);
    }
  }
  embed(batch);

  // A cross-attention layer runs before the self-attention layer it is placed at; a batch
  // without images skips them (their rows would be masked out: Meta's text-only inference).
  const bool any_images = std::any_of(batch.begin(), batch.end(), [](const BatchItem& b) { return b.images; });
  size_t next_cross = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    for (; next_cross < c.cross_attention_before.size() && c.cross_attention_before[next_cross] == l; ++next_cross) {
      if (any_images) cross_layer(static_cast<int64_t>(next_cross), batch);
    }
    attention_layer(l, batch, cache);
    ffn_layer(l);
  }

  // Final norm and LM head, only for the rows whose logits are wanted.
  ensure(s_.xn, logit_rows * dim);
  int64_t row = 0;
  t = 0;
  for (const auto& item : batch) {
    const int64_t n = static_cast<int64_t>(item.tokens.size());
    for (int64_t j = item.all_logits ? 0 : n - 1; j < n; ++j, ++row) {
      kernels::rmsnorm(s_.x.data() + (t + j) * dim, weights_.norm.data(), s_.xn.data() + row * dim, dim,
                       static_cast<float>(c.norm_eps));
    }
    t += n;
  }
  gather_logits(logit_rows, logits);
}

void LlamaModel::embed(std::span<const BatchItem> batch) {
  const int64_t dim = config_.dim;
  const Slice vocab = shard().vocab;
  int64_t t = 0;
  for (const BatchItem& item : batch) {
    for (int32_t id : item.tokens) {
      float* x = s_.x.data() + t++ * dim;
      if (id >= config_.vocab_size) {  // the image token (vision models: one rank)
        std::copy_n(weights_.extra_embeddings.data() + (id - config_.vocab_size) * dim, dim, x);
      } else if (id >= vocab.begin && id < vocab.end()) {
        matrix_row_f32(weights_.tok_embeddings, id - vocab.begin, x);
      } else {
        std::fill(x, x + dim, 0.0f);  // another rank's row: it arrives through the sum
      }
    }
  }
  if (group_) all_reduce(s_.x.data(), tokens_ * dim);
}

void LlamaModel::all_reduce(float* data, int64_t n) {
  const Timer timer;
  if (bf16_payload_) {
    group_->all_reduce_sum_bf16({data, static_cast<size_t>(n)});
  } else {
    group_->all_reduce_sum({data, static_cast<size_t>(n)});
  }
  stats_.seconds += timer.seconds();
  ++stats_.all_reduces;
  stats_.all_reduce_bytes += n * static_cast<int64_t>(bf16_payload_ ? 2 : sizeof(float));
}

void LlamaModel::gather_logits(int64_t rows, std::vector<float>& logits) {
  const int64_t vocab = config_.vocab_size;
  logits.resize(static_cast<size_t>(rows * vocab));
  if (!group_) {
    project(s_.xn.data(), rows, {{&weights_.output, logits.data()}});
    return;
  }
  const ShardPlan& p = shard();
  ensure(s_.local_logits, rows * p.vocab.size);
  project(s_.xn.data(), rows, {{&weights_.output, s_.local_logits.data()}});
  // The last rank's slice is the smallest: candidates beyond it would be a whole slice anyway.
  const int64_t smallest_slice = vocab - (p.ranks - 1) * p.vocab_stride;
  if (p.ranks > 1 && logit_candidates_ > 0 && logit_candidates_ < smallest_slice) {
    gather_candidates(rows, logits);
    return;
  }
  // Each rank's rows of its vocabulary slice, padded to the largest slice so the pieces are the
  // same size, gathered in rank order, then laid out as [rows][vocab].
  const int64_t stride = p.vocab_stride;
  ensure(s_.padded_logits, rows * stride);
  ensure(s_.gathered, rows * stride * p.ranks);
  for (int64_t r = 0; r < rows; ++r) {
    float* padded = s_.padded_logits.data() + r * stride;
    std::copy_n(s_.local_logits.data() + r * p.vocab.size, p.vocab.size, padded);
    std::fill(padded + p.vocab.size, padded + stride, 0.0f);
  }
  const auto piece = std::as_bytes(std::span(s_.padded_logits.data(), static_cast<size_t>(rows * stride)));
  all_gather(piece, std::as_writable_bytes(std::span(s_.gathered.data(), piece.size() / 4 * p.ranks)));
  for (int rank = 0; rank < p.ranks; ++rank) {
    const int64_t v0 = rank * stride;
    const int64_t n = std::min(vocab, v0 + stride) - v0;
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(s_.gathered.data() + (rank * rows + r) * stride, n, logits.data() + r * vocab + v0);
    }
  }
}

void LlamaModel::gather_candidates(int64_t rows, std::vector<float>& logits) {
  const ShardPlan& p = shard();
  const int64_t vocab = config_.vocab_size;
  const auto k = static_cast<size_t>(logit_candidates_);
  // Each row's k largest of this rank's slice, larger first and the lower id first among equals
  // (the sampler's order, so the whole row's top k is among the ranks' candidates whatever the
  // ties); NaN counts as the largest, so a NaN still reaches the sampler, which refuses it.
  ensure(s_.candidates, rows * static_cast<int64_t>(k));
  ensure(s_.gathered_candidates, rows * static_cast<int64_t>(k) * p.ranks);
  std::vector<int32_t>& order = s_.candidate_order;
  order.resize(static_cast<size_t>(p.vocab.size));
  auto key = [](float v) { return std::isnan(v) ? std::numeric_limits<float>::infinity() : v; };
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = s_.local_logits.data() + r * p.vocab.size;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(k), order.end(), [&](int32_t a, int32_t b) {
      return key(row[a]) > key(row[b]) || (key(row[a]) == key(row[b]) && a < b);
    });
    for (size_t i = 0; i < k; ++i) {
      s_.candidates[static_cast<size_t>(r) * k + i] = {row[order[i]], static_cast<int32_t>(p.vocab.begin + order[i])};
    }
  }
  const auto piece = std::as_bytes(std::span(s_.candidates.data(), static_cast<size_t>(rows) * k));
  all_gather(piece, std::as_writable_bytes(std::span(s_.gathered_candidates.data(), static_cast<size_t>(rows) * k *
                                                                                       static_cast<size_t>(p.ranks))));
  std::fill(logits.begin(), logits.end(), -std::numeric_limits<float>::infinity());
  for (int rank = 0; rank < p.ranks; ++rank) {
    for (int64_t r = 0; r < rows; ++r) {
      const Scratch::Candidate* c = s_.gathered_candidates.data() + (static_cast<size_t>(rank * rows + r)) * k;
      for (size_t i = 0; i < k; ++i) logits[static_cast<size_t>(r * vocab + c[i].id)] = c[i].logit;
    }
  }
}

void LlamaModel::all_gather(std::span<const std::byte> mine, std::span<std::byte> all) {
  const Timer timer;
  group_->all_gather(mine, all);
  stats_.seconds += timer.seconds();
  ++stats_.gathers;
  stats_.gather_bytes += static_cast<int64_t>(mine.size());
}

void LlamaModel::project(const float* x, int64_t rows, std::initializer_list<Product> products) {
  // bf16 products in one kernel call; 8-/4-bit ones in another, on x quantized once.
  MatmulJob bf16_jobs[3];
  kernels::QMatmulJob q_jobs[3];
  size_t n_bf16 = 0, n_q = 0;
  check(products.size() <= 3, "project: at most 3 products per call");
  for (const Product& p : products) {
    const Matrix& w = *p.w;
    if (w.format == WeightFormat::BF16) {
      bf16_jobs[n_bf16++] = MatmulJob{w.bf16(), w.rows, w.cols, x, w.cols, p.y, w.rows, rows};
    } else {
      if (n_q == 0) kernels::quantize_activations(x, w.cols, rows, w.cols, xq_);
      q_jobs[n_q++] = kernels::QMatmulJob{{w.format, w.data, w.rows, w.cols}, &xq_, p.y, w.rows};
    }
  }
  if (n_bf16) kernels::matmul_bf16(std::span(bf16_jobs, n_bf16));
  if (n_q) kernels::matmul_q(std::span(q_jobs, n_q));
}

void LlamaModel::attention_layer(int64_t l, std::span<const BatchItem> batch, KvCache& cache) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[static_cast<size_t>(l)];
  const int64_t T = tokens_;
  const int64_t dim = c.dim;
  const int64_t hd = c.head_dim;
  const int64_t n_heads = shard().q_heads.size, n_kv_heads = shard().kv_heads.size;  // this rank's
  const int64_t q_dim = n_heads * hd;
  const int64_t kv_dim = n_kv_heads * hd;
  const float eps = static_cast<float>(c.norm_eps);
  ensure(s_.xn, T * dim);
  ensure(s_.q, T * q_dim);
  ensure(s_.k, T * kv_dim);
  ensure(s_.v, T * kv_dim);
  ensure(s_.attn, T * q_dim);
  ensure(s_.out, T * dim);

  parallel_for(static_cast<size_t>(T), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t)
      kernels::rmsnorm(s_.x.data() + t * dim, w.attention_norm.data(), s_.xn.data() + t * dim, dim, eps);
  });
  project(s_.xn.data(), T, {{&w.wq, s_.q.data()}, {&w.wk, s_.k.data()}, {&w.wv, s_.v.data()}});

  const kernels::KvPoolView& pool = cache.layer(l);
  const int64_t half = hd / 2;
  // Each token writes its own cache slot: tokens split over the threads (a prefill chunk).
  parallel_rows(T, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      kernels::rope_rotate(s_.q.data() + t * q_dim, n_heads, hd, s_.cos.data() + t * half, s_.sin.data() + t * half);
      kernels::rope_rotate(s_.k.data() + t * kv_dim, n_kv_heads, hd, s_.cos.data() + t * half,
                           s_.sin.data() + t * half);
      const BatchItem& item = batch[static_cast<size_t>(s_.item_of[static_cast<size_t>(t)])];
      kernels::kv_store(pool, item.block_table, s_.pos[static_cast<size_t>(t)], s_.k.data() + t * kv_dim,
                        s_.v.data() + t * kv_dim);
    }
  });

  // Causal attention of every item's new tokens against its cached context (kernels/attention.h
  // splits the work over the threads).
  std::vector<kernels::AttentionSequence> sequences;
  sequences.reserve(batch.size());
  int64_t first_row = 0;
  for (const BatchItem& item : batch) {
    const auto n = static_cast<int64_t>(item.tokens.size());
    sequences.push_back({first_row, n, item.start_pos, item.block_table});
    first_row += n;
  }
  kernels::AttentionBatch attention;
  attention.q = s_.q.data();
  attention.out = s_.attn.data();
  attention.n_heads = n_heads;
  attention.pool = &pool;
  attention.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  attention.sequences = sequences;
  kernels::attention(attention);

  project(s_.attn.data(), T, {{&w.wo, s_.out.data()}});
  add_residual(T * dim);
}

void LlamaModel::add_residual(int64_t n) {
  // A row-parallel product leaves each rank a partial sum: the group adds them up first.
  if (group_) all_reduce(s_.out.data(), n);
  constexpr int64_t kParallelFrom = 1 << 16;  // below this the add is cheaper than a fork-join
  parallel_rows(n, [&](int64_t i0, int64_t i1) { kernels::add_inplace(s_.x.data() + i0, s_.out.data() + i0, i1 - i0); },
                kParallelFrom);
}

void LlamaModel::ffn_layer(int64_t l) {
  const ModelConfig& c = config_;
  const LayerWeights& w = weights_.layers[static_cast<size_t>(l)];
  const int64_t T = tokens_;
  const int64_t dim = c.dim;
  const float eps = static_cast<float>(c.norm_eps);
  const int64_t ffn = shard().ffn.size;  // this rank's slice of the MLP width
  ensure(s_.h1, T * ffn);
  ensure(s_.h3, T * ffn);
  parallel_for(static_cast<size_t>(T), [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t)
      kernels::rmsnorm(s_.x.data() + t * dim, w.ffn_norm.data(), s_.xn.data() + t * dim, dim, eps);
  });
  project(s_.xn.data(), T, {{&w.w1, s_.h1.data()}, {&w.w3, s_.h3.data()}});
  parallel_rows(T * ffn, [&](int64_t i0, int64_t i1) {
    kernels::silu_mul(s_.h1.data() + i0, s_.h3.data() + i0, i1 - i0);
  }, 1 << 15);
  project(s_.h1.data(), T, {{&w.w2, s_.out.data()}});
  add_residual(T * dim);
}

}  // namespace llama3::model
