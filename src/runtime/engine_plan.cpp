#include "runtime/engine_plan.h"

#include <fmt/core.h>

#include <algorithm>

#include "core/error.h"
#include "model/kv_cache.h"
#include "runtime/model_spec.h"

namespace llama3::runtime {

EnginePlan plan_engine(const EngineOptions& options) {
  check(options.max_batch >= 1 && options.max_batch <= 32, "max_batch {} is not in 1..32", options.max_batch);
  check(options.max_queue >= 0, "max_queue must not be negative");
  check(options.block_size >= 1 && options.prefill_chunk >= 1, "block size and prefill chunk must be positive");
  check(options.position_offset >= 0, "position_offset must not be negative");
  EnginePlan plan;
  plan.request = model_request(options.model);
  plan.model = model::plan_model(plan.request);
  const model::ModelConfig& c = plan.model.config;
  check(options.max_seq_len >= 2 && options.position_offset + options.max_seq_len <= c.max_seq_len,
        "max_seq_len {}{} must be within 2..{} for {}", options.max_seq_len,
        options.position_offset ? fmt::format(" + position offset {}", options.position_offset) : "",
        c.max_seq_len, c.name);
  const MemoryLimit limit = detect_memory_limit(options.memory_limit_gb);
  KvPoolRequest kv;
  kv.batch_size = options.max_batch;
  kv.max_seq_len = options.max_seq_len;
  kv.dtype = plan.model.precision.kv_cache;
  kv.block_size = options.block_size;
  kv.kv_memory_gib = options.kv_memory_gb;
  kv.weight_bytes = plan.model.weight_bytes;
  kv.available_bytes = limit.bytes;
  // An exact block count is taken as given, even below one request's max_seq_len (tests drive
  // the scheduler's out-of-blocks paths with it); otherwise the demo's sizing rules.
  if (options.kv_blocks) {
    plan.pool = KvPoolPlan{options.block_size, *options.kv_blocks, 0, 0, "given"};
    plan.pool.bytes = static_cast<size_t>(*options.kv_blocks) *
                      model::KvCache::bytes_for(plan.model.kv_config, 1, options.block_size, kv.dtype);
  } else {
    plan.pool = plan_kv_pool(plan.model.kv_config, kv);
  }
  check(plan.pool.num_blocks >= 1, "the KV pool needs at least one block");

  // A step computes the decoding requests' tokens and prefill chunks up to the step's budget
  // (at least one chunk); the logits are one row per decoder and per prefill that ends.
  RunShape shape;
  shape.batch = options.max_batch;
  shape.step_tokens = std::max<int64_t>(options.step_tokens, 1) + options.prefill_chunk;
  shape.logit_rows = options.max_batch + (shape.step_tokens + options.prefill_chunk - 1) / options.prefill_chunk;
  shape.kv_bytes = plan.pool.bytes;
  plan.memory = plan_memory(plan.request, plan.model, shape, limit);
  return plan;
}

}  // namespace llama3::runtime
