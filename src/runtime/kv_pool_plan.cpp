#include "runtime/kv_pool_plan.h"

#include <fmt/core.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/kv_cache.h"

namespace llama3::runtime {

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
}

KvPoolPlan plan_kv_pool(const model::ModelConfig& c, const KvPoolRequest& r) {
  KvPoolPlan plan;
  plan.block_size = r.block_size.value_or(kDefaultBlockSize);
  check(plan.block_size > 0 && r.max_seq_len > 0 && r.batch_size > 0, "KV pool: sizes must be positive");
  const size_t per_block = model::KvCache::bytes_for(c, 1, plan.block_size, r.dtype);
  const int64_t user_blocks = (r.max_seq_len + plan.block_size - 1) / plan.block_size;
  plan.bytes_per_user = static_cast<size_t>(user_blocks) * per_block;
  const int64_t batch_blocks = user_blocks * r.batch_size;  // more can never be in use at once
  if (r.num_blocks) {
    plan.num_blocks = *r.num_blocks;
    plan.source = "--page_params";
  } else {
    double budget = 0.0;
    if (r.kv_memory_gib) {
      check(*r.kv_memory_gib > 0, "--kv_memory {} must be positive", *r.kv_memory_gib);
      budget = *r.kv_memory_gib * kGiB;
      plan.source = fmt::format("--kv_memory {:g} GiB", *r.kv_memory_gib);
    } else {
      const double left = static_cast<double>(r.available_bytes) - static_cast<double>(r.weight_bytes);
      budget = std::max(0.0, left * (1.0 - kKvMemoryMargin));
      plan.source = fmt::format("default: {:.0f}% of the {:.2f} GiB available beside {:.2f} GiB of weights",
                                100 * (1.0 - kKvMemoryMargin), static_cast<double>(r.available_bytes) / kGiB,
                                static_cast<double>(r.weight_bytes) / kGiB);
      if (r.available_bytes == 0) {  // unknown: the batch's need, unchecked
        budget = static_cast<double>(batch_blocks) * static_cast<double>(per_block);
        plan.source = "default: the batch at max_seq_len (available memory unknown)";
      } else if (budget < static_cast<double>(plan.bytes_per_user)) {
        // Too little beside the weights for even one user: plan one user, and let the memory
        // plan (memory_plan.h) refuse the whole with the figures and what would fit.
        budget = static_cast<double>(plan.bytes_per_user);
        plan.source = "default: one user at max_seq_len (less is available beside the weights)";
      }
    }
    plan.num_blocks = std::min<int64_t>(batch_blocks, static_cast<int64_t>(budget / static_cast<double>(per_block)));
  }
  plan.bytes = static_cast<size_t>(plan.num_blocks) * per_block;
  check(plan.num_blocks >= user_blocks,
        "KV cache too small: {} blocks of {} positions ({:.2f} GiB of {} KV, {}) cannot hold one user's "
        "--max_seq_len {}, which needs {} blocks ({:.2f} GiB); raise --kv_memory or --page_params' "
        "page_max_num_blocks, lower --max_seq_len, or use --kv_cache q8",
        plan.num_blocks, plan.block_size, static_cast<double>(plan.bytes) / kGiB, kernels::kv_dtype_name(r.dtype),
        plan.source, r.max_seq_len, user_blocks, static_cast<double>(plan.bytes_per_user) / kGiB);
  return plan;
}

void parse_page_params(std::string_view text, KvPoolRequest& g) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("--page_params is not valid JSON: {}", e.what());
  }
  check(j.is_object(), "--page_params must be a JSON object like {{\"page_block_size\":32,\"page_max_num_blocks\":1024}}");
  for (const auto& [key, value] : j.items()) {
    check(key == "page_block_size" || key == "page_max_num_blocks",
          "--page_params: unknown key \"{}\" (accepted: page_block_size, page_max_num_blocks)", key);
    check(value.is_number_integer() && value.get<int64_t>() > 0, "--page_params: {} must be a positive integer", key);
    (key == "page_block_size" ? g.block_size : g.num_blocks) = value.get<int64_t>();
  }
  check(g.block_size.value_or(0) <= 4096 && g.num_blocks.value_or(0) <= (int64_t{1} << 22),
        "--page_params: values too large");
}

}  // namespace llama3::runtime
