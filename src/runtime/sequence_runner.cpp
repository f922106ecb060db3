#include "runtime/sequence_runner.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/error.h"

namespace llama3::runtime {

namespace {
constexpr int64_t kBlock = 32;
}

SequenceRunner::SequenceRunner(model::LlamaModel& model, int64_t sequences, int64_t capacity, kernels::KvDType kv)
    : model_(model), capacity_(capacity),
      cache_(model.kv_config(), sequences * ((capacity + kBlock - 1) / kBlock), kBlock, kv),
      tables_(static_cast<size_t>(sequences)), lengths_(static_cast<size_t>(sequences), 0) {
  check(sequences >= 1 && capacity >= 1, "SequenceRunner: needs at least one sequence and one token of room");
  const int64_t blocks = (capacity + kBlock - 1) / kBlock;
  for (int64_t s = 0; s < sequences; ++s) {
    auto& t = tables_[static_cast<size_t>(s)];
    t.resize(static_cast<size_t>(blocks));
    std::iota(t.begin(), t.end(), static_cast<int32_t>(s * blocks));
  }
}

void SequenceRunner::check_room(int64_t s, int64_t n) const {
  check(s >= 0 && s < static_cast<int64_t>(lengths_.size()), "SequenceRunner: no sequence {}", s);
  check(length(s) + n <= capacity_, "SequenceRunner: sequence {} would hold {} tokens; room for {}", s, length(s) + n,
        capacity_);
}

void SequenceRunner::prefill(int64_t s, std::span<const int32_t> tokens, int64_t chunk, bool all_logits,
                             std::vector<float>& logits) {
  check_room(s, static_cast<int64_t>(tokens.size()));
  check(chunk >= 1, "SequenceRunner: chunk must be positive");
  std::vector<float> part;
  if (all_logits) logits.clear();
  for (size_t begin = 0; begin < tokens.size(); begin += static_cast<size_t>(chunk)) {
    const size_t n = std::min(tokens.size() - begin, static_cast<size_t>(chunk));
    const model::BatchItem item{tokens.subspan(begin, n), length(s), tables_[static_cast<size_t>(s)], all_logits};
    model_.forward({&item, 1}, cache_, all_logits ? part : logits);
    if (all_logits) logits.insert(logits.end(), part.begin(), part.end());
    lengths_[static_cast<size_t>(s)] += static_cast<int64_t>(n);
  }
}

void SequenceRunner::decode(std::span<const int32_t> tokens, std::vector<float>& logits) {
  items_.clear();
  for (size_t s = 0; s < tokens.size(); ++s) {
    check_room(static_cast<int64_t>(s), 1);
    items_.push_back({tokens.subspan(s, 1), lengths_[s], tables_[s], false});
  }
  model_.forward(items_, cache_, logits);
  for (size_t s = 0; s < tokens.size(); ++s) ++lengths_[s];
}

void SequenceRunner::fill_synthetic(int64_t s, int64_t n, uint32_t seed) {
  check_room(s, n);
  const model::ModelConfig& c = model_.config();
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> k(static_cast<size_t>(c.n_kv_heads * c.head_dim)), v(k.size());
  const auto& table = tables_[static_cast<size_t>(s)];
  for (int64_t pos = length(s); pos < length(s) + n; ++pos) {
    for (auto& x : k) x = dist(rng);
    for (auto& x : v) x = dist(rng);
    for (int64_t l = 0; l < c.n_layers; ++l) kernels::kv_store(cache_.layer(l), table, pos, k.data(), v.data());
  }
  lengths_[static_cast<size_t>(s)] += n;
}

void SequenceRunner::reset() { std::fill(lengths_.begin(), lengths_.end(), 0); }

int32_t argmax_row(const std::vector<float>& logits, int64_t row, int64_t vocab) {
  const auto first = logits.begin() + row * vocab;
  return static_cast<int32_t>(std::max_element(first, first + vocab) - first);
}

}  // namespace llama3::runtime
