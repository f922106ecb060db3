#pragma once
// The memory a run will need, added up before anything is allocated, and checked against what
// the machine gives: a plan that does not fit is a one-line error naming the figures and what
// would fit (fewer layers, another mode, a smaller KV pool), not a kill by the kernel's OOM
// killer half-way through loading. `--dry_run` and `llama3 plan` print the plan.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/model_factory.h"

namespace llama3::runtime {

// The memory a run may take: MemAvailable, lowered to what the process's cgroup (v2 memory.max
// minus memory.current, or v1's limit minus usage) still allows; or a forced figure
// (--memory_limit), which also lets tests plan for a small machine without exhausting this one.
struct MemoryLimit {
  size_t bytes = 0;     // 0: unknown (no /proc): nothing is refused
  std::string source;   // "MemAvailable", "cgroup memory.max", "--memory_limit"
};
MemoryLimit detect_memory_limit(std::optional<double> forced_gib);

// What the run does with the model, besides holding its weights.
struct RunShape {
  int64_t batch = 1;         // sequences decoded together
  int64_t step_tokens = 1;   // most tokens in one forward pass (a prefill chunk plus the decoders)
  int64_t logit_rows = 1;    // rows of logits one forward pass returns
  size_t kv_bytes = 0;       // the KV pool (or caches)
  size_t kept_bytes = 0;     // anything the command keeps beside (generate --logits_all: every row)
  std::string kept_what;
};

struct MemoryItem {
  std::string what;    // "weights", "KV cache", ...
  size_t bytes = 0;
  std::string detail;  // how it was sized, for describe()
};

struct MemoryPlan {
  std::string model;  // name, layers, mode
  std::vector<MemoryItem> items;
  MemoryLimit limit;
  std::vector<std::string> would_fit;  // alternatives that fit, when this does not

  size_t total() const;
  bool fits() const { return limit.bytes == 0 || total() <= limit.bytes; }
};

// Runtime beside the model's own buffers: the tokenizer's tables, the binary, thread stacks, the
// sampler's and the HTTP server's buffers (measured at under 150 MiB for the 1B's demo and server
// with the weights subtracted; rounded up).
inline constexpr size_t kRuntimeOverheadBytes = size_t{256} << 20;

MemoryPlan plan_memory(const model::ModelRequest& request, const model::ModelPlan& model, const RunShape& shape,
                       const MemoryLimit& limit);

// The plan as a few aligned lines (--dry_run, `llama3 plan`), ending with the verdict.
std::string describe(const MemoryPlan& plan);

// Throws the one-line error when the plan does not fit.
void require_fits(const MemoryPlan& plan);

}  // namespace llama3::runtime
