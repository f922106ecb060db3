#pragma once
// How many KV blocks a run gets. vLLM's way: the pool takes a memory budget (by default what is
// left beside the weights, with a margin), capped at what the batch can use (every user at
// max_seq_len); explicit --page_params override the size. A pool too small for a single user's
// max_seq_len is refused here, before anything is loaded, with both figures in the message.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kernels/kv_pool.h"
#include "model/model_config.h"

namespace llama3::runtime {

inline constexpr int64_t kDefaultBlockSize = 32;
// The default budget keeps this share of the memory left after the weights for everything else
// (activations, the tokenizer, other processes' growth).
inline constexpr double kKvMemoryMargin = 0.1;

struct KvPoolRequest {
  int batch_size = 1;
  int64_t max_seq_len = 0;
  kernels::KvDType dtype = kernels::KvDType::BF16;
  std::optional<int64_t> block_size;  // --page_params page_block_size
  std::optional<int64_t> num_blocks;  // --page_params page_max_num_blocks
  std::optional<double> kv_memory_gib;  // --kv_memory
  size_t weight_bytes = 0;      // for the default budget
  size_t available_bytes = 0;   // memory available now (0: unknown)
};

struct KvPoolPlan {
  int64_t block_size = kDefaultBlockSize;
  int64_t num_blocks = 0;
  size_t bytes = 0;            // the pool's memory (scales included)
  size_t bytes_per_user = 0;   // one user at max_seq_len
  std::string source;          // how the size was chosen, for the summary
};

KvPoolPlan plan_kv_pool(const model::ModelConfig& config, const KvPoolRequest& request);

// The demo's --page_params JSON ({"page_block_size": 32, "page_max_num_blocks": 1024}, either
// key optional) into `request`; throws llama3::Error naming the problem.
void parse_page_params(std::string_view text, KvPoolRequest& request);

}  // namespace llama3::runtime
