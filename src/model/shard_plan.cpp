#include "model/shard_plan.h"

#include <fmt/format.h>

#include "core/error.h"

namespace llama3::model {

std::string ShardPlan::describe() const {
  return fmt::format("rank {} of {}: query heads {}..{}, kv heads {}..{}, MLP rows {}..{}, vocabulary {}..{}", rank,
                     ranks, q_heads.begin, q_heads.end() - 1, kv_heads.begin, kv_heads.end() - 1, ffn.begin,
                     ffn.end() - 1, vocab.begin, vocab.end() - 1);
}

ShardPlan shard_plan(const ModelConfig& c, int rank, int ranks) {
  check(ranks >= 1 && rank >= 0 && rank < ranks, "shard plan: rank {} of {} is not a rank", rank, ranks);
  ShardPlan p;
  p.rank = rank;
  p.ranks = ranks;
  const int64_t r = rank, n = ranks;
  const int64_t group = c.n_heads / c.n_kv_heads;  // query heads per kv head
  if (n <= c.n_kv_heads) {
    check(c.n_kv_heads % n == 0, "cannot split {} kv heads over {} ranks: use a rank count that divides {}",
          c.n_kv_heads, n, c.n_kv_heads);
    const int64_t kv = c.n_kv_heads / n;
    p.kv_heads = {r * kv, kv};
    p.q_heads = {r * kv * group, kv * group};
  } else {
    // More ranks than kv heads: each kv head on `copies` ranks, its query heads split among them.
    check(n % c.n_kv_heads == 0 && group % (n / c.n_kv_heads) == 0,
          "cannot split {} query heads sharing {} kv heads over {} ranks: the ranks per kv head ({} / {}) must "
          "divide its {} query heads",
          c.n_heads, c.n_kv_heads, n, n, c.n_kv_heads, group);
    const int64_t copies = n / c.n_kv_heads;
    const int64_t q = group / copies;
    p.kv_heads = {r / copies, 1};
    p.q_heads = {(r / copies) * group + (r % copies) * q, q};
  }
  check(c.ffn_dim % n == 0 && (c.ffn_dim / n) % 32 == 0,
        "cannot split the MLP width {} over {} ranks: each rank's share must be a multiple of 32", c.ffn_dim, n);
  p.q_rows = {p.q_heads.begin * c.head_dim, p.q_heads.size * c.head_dim};
  p.kv_rows = {p.kv_heads.begin * c.head_dim, p.kv_heads.size * c.head_dim};
  p.ffn = {r * (c.ffn_dim / n), c.ffn_dim / n};
  check(p.q_heads.size * c.head_dim % 32 == 0,
        "cannot split {} query heads of width {} over {} ranks: each rank's {} columns of wo must be a multiple of 32",
        c.n_heads, c.head_dim, n, p.q_heads.size * c.head_dim);
  p.vocab_stride = (c.vocab_size + n - 1) / n;
  const int64_t v0 = std::min(c.vocab_size, r * p.vocab_stride);
  p.vocab = {v0, std::min(c.vocab_size, v0 + p.vocab_stride) - v0};
  check(p.vocab.size > 0, "cannot split a vocabulary of {} over {} ranks", c.vocab_size, n);
  return p;
}

ModelConfig shard_kv_config(const ModelConfig& c, const ShardPlan& plan) {
  ModelConfig local = c;
  local.n_kv_heads = plan.kv_heads.size;
  return local;
}

}  // namespace llama3::model
