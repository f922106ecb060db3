#include "runtime/memory_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "model/llama_model.h"
#include "model/precision.h"
#include "runtime/rss.h"

namespace llama3::runtime {

namespace fs = std::filesystem;

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

double gib(size_t bytes) { return static_cast<double>(bytes) / kGiB; }

// A file holding one number ("max" and v1's "unlimited" 2^63-4096 read as none).
std::optional<size_t> read_number(const fs::path& file) {
  std::ifstream in(file);
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  try {
    const unsigned long long v = std::stoull(text);
    if (v >= (1ull << 62)) return std::nullopt;
    return static_cast<size_t>(v);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "key value" lines of a cgroup memory.stat.
size_t stat_value(const fs::path& file, std::string_view key) {
  std::ifstream in(file);
  std::string k;
  unsigned long long v = 0;
  while (in >> k >> v) {
    if (k == key) return static_cast<size_t>(v);
  }
  return 0;
}

// What the cgroup still allows: limit minus the working set (usage without the inactive page
// cache, which the kernel reclaims before it kills), the tightest over the cgroup's ancestors.
// v2 (a "0::/path" line of /proc/self/cgroup) or v1 (the "memory" controller's line).
std::optional<size_t> cgroup_headroom() {
  std::ifstream self("/proc/self/cgroup");
  std::string line;
  std::optional<size_t> best;
  auto consider = [&](const fs::path& dir, const char* limit_file, const char* usage_file, const char* inactive) {
    const auto limit = read_number(dir / limit_file);
    const auto usage = read_number(dir / usage_file);
    if (!limit || !usage) return;
    const size_t working = *usage - std::min(*usage, stat_value(dir / "memory.stat", inactive));
    const size_t headroom = *limit > working ? *limit - working : 0;
    best = best ? std::min(*best, headroom) : headroom;
  };
  while (std::getline(self, line)) {
    const size_t colon1 = line.find(':'), colon2 = line.find(':', colon1 + 1);
    if (colon1 == std::string::npos || colon2 == std::string::npos) continue;
    const std::string controllers = line.substr(colon1 + 1, colon2 - colon1 - 1);
    fs::path rel = line.substr(colon2 + 1);
    const bool v2 = line.compare(0, colon1, "0") == 0 && controllers.empty();
    const bool v1 = controllers == "memory";
    if (!v1 && !v2) continue;
    const fs::path root = v2 ? fs::path("/sys/fs/cgroup") : fs::path("/sys/fs/cgroup/memory");
    // From the process's own cgroup up to the root (a limit on any ancestor applies).
    for (fs::path p = rel;; p = p.parent_path()) {
      const fs::path dir = root / p.relative_path();
      if (v2) consider(dir, "memory.max", "memory.current", "inactive_file");
      else consider(dir, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file");
      if (p == p.parent_path() || p.empty()) break;
    }
  }
  return best;
}

}  // namespace

MemoryLimit detect_memory_limit(std::optional<double> forced_gib) {
  if (forced_gib) {
    check(*forced_gib > 0 && *forced_gib < 1e6, "--memory_limit {} must be a positive number of GiB", *forced_gib);
    return {static_cast<size_t>(*forced_gib * kGiB), fmt::format("--memory_limit {:g} GiB", *forced_gib)};
  }
  MemoryLimit limit{available_memory_bytes(), "MemAvailable"};
  if (const auto headroom = cgroup_headroom(); headroom && (limit.bytes == 0 || *headroom < limit.bytes)) {
    limit = {*headroom, "the cgroup's memory limit"};
  }
  return limit;
}

size_t MemoryPlan::total() const {
  size_t sum = 0;
  for (const MemoryItem& item : items) sum += item.bytes;
  return sum;
}

MemoryPlan plan_memory(const model::ModelRequest& request, const model::ModelPlan& model, const RunShape& shape,
                       const MemoryLimit& limit) {
  const model::ModelConfig& c = model.config;
  MemoryPlan plan;
  plan.model = fmt::format("{}, {} layers, {} mode{}{}", c.name, c.n_layers, model.precision.mode,
                           model.dir ? ", " + model.dir->string() : std::string(", random weights"),
                           model.share.whole() ? std::string()
                                               : fmt::format(", rank 0's share of mesh {} (each rank holds 1/{})",
                                                             request.mesh, model.share.ranks));
  plan.limit = limit;
  const size_t activations = model::LlamaModel::activation_bytes(c, shape.step_tokens, shape.logit_rows);
  plan.items = {
      {"weights", model.weight_bytes, model.precision.mode + " mode"},
      {"KV cache", shape.kv_bytes,
       fmt::format("{}, {} users", kernels::kv_dtype_name(model.precision.kv_cache), shape.batch)},
      {"activations", activations,
       fmt::format("{} tokens per pass, {} rows of logits", shape.step_tokens, shape.logit_rows)},
      {"runtime", kRuntimeOverheadBytes, "tokenizer, threads, buffers"},
  };
  if (shape.kept_bytes) plan.items.push_back({shape.kept_what, shape.kept_bytes, ""});
  if (plan.fits()) return plan;

  // What would fit instead, each change alone.
  const size_t total = plan.total();
  const size_t rest = total - model.weight_bytes - shape.kv_bytes;
  // Fewer layers: weights and KV shrink per layer, the embedding, head and the rest do not.
  {
    model::ModelConfig none = c;
    none.n_layers = 0;
    const size_t fixed = rest + model::estimated_weight_bytes(none, model.precision, model.share);
    const double per_layer =
        static_cast<double>(model.weight_bytes - (fixed - rest) + shape.kv_bytes) / static_cast<double>(c.n_layers);
    if (fixed < limit.bytes && per_layer > 0) {
      const auto layers = static_cast<int64_t>(static_cast<double>(limit.bytes - fixed) / per_layer);
      if (layers >= 1 && layers < c.n_layers) plan.would_fit.push_back(fmt::format("--layers {}", layers));
    }
  }
  // A lighter mode (the weights are most of a big model's memory).
  for (const char* mode : {"accuracy", "performance"}) {
    if (request.precision || model.precision.mode == mode) continue;
    const size_t w = model::estimated_weight_bytes(c, model::make_precision(mode), model.share);
    if (w < model.weight_bytes && total - model.weight_bytes + w <= limit.bytes) {
      plan.would_fit.push_back(fmt::format("--optimizations {} ({:.2f} GiB of weights)", mode, gib(w)));
    }
  }
  // A mesh: each rank holds its share of the weights and of the KV cache's heads.
  for (int ranks : {2, 4, 8, 16, 32}) {
    if (ranks <= model.share.ranks) continue;
    model::ShardPlan share;
    try {
      share = model::shard_plan(c, 0, ranks);
    } catch (const Error&) {
      continue;  // the model does not split over this many ranks
    }
    const size_t w = model::estimated_weight_bytes(c, model.precision, share);
    const size_t kv = static_cast<size_t>(static_cast<double>(shape.kv_bytes) *
                                          static_cast<double>(share.kv_heads.size) /
                                          static_cast<double>(model.kv_config.n_kv_heads));
    if (total - model.weight_bytes - shape.kv_bytes + w + kv <= limit.bytes) {
      plan.would_fit.push_back(fmt::format("a mesh of {} machines like this one (mpirun -np {} --hostfile H llama3 "
                                           "... --mesh {}x1: {:.2f} GiB of weights each)",
                                           ranks, ranks, ranks, gib(w)));
      break;
    }
  }
  // A smaller KV pool.
  if (shape.kv_bytes > 0 && total - shape.kv_bytes < limit.bytes) {
    plan.would_fit.push_back(fmt::format("a KV cache of at most {:.2f} GiB (--kv_memory, a shorter --max_seq_len, "
                                         "fewer users or --kv_cache q8)",
                                         gib(limit.bytes - (total - shape.kv_bytes))));
  }
  return plan;
}

std::string describe(const MemoryPlan& plan) {
  std::ostringstream out;
  out << fmt::format("Memory plan for {}:\n", plan.model);
  for (const MemoryItem& item : plan.items) {
    out << fmt::format("  {:>9.3f} GiB  {}{}\n", gib(item.bytes), item.what,
                       item.detail.empty() ? "" : " (" + item.detail + ")");
  }
  out << fmt::format("  {:>9.3f} GiB  total\n", gib(plan.total()));
  if (plan.limit.bytes == 0) {
    out << "  available memory unknown: not checked\n";
  } else {
    out << fmt::format("  {:>9.3f} GiB  available ({})\n", gib(plan.limit.bytes), plan.limit.source);
    out << (plan.fits() ? std::string("  fits\n")
                        : fmt::format("  does not fit{}\n", plan.would_fit.empty()
                                                                ? std::string()
                                                                : "; would fit: " + fmt::format("{}", fmt::join(plan.would_fit, "; or "))));
  }
  return out.str();
}

void require_fits(const MemoryPlan& plan) {
  if (plan.fits()) return;
  std::string parts;
  for (const MemoryItem& item : plan.items) {
    if (item.bytes >= (size_t{1} << 20)) parts += fmt::format("{}{} {:.2f}", parts.empty() ? "" : ", ", item.what, gib(item.bytes));
  }
  fail("not enough memory for {}: the run needs {:.2f} GiB ({}) but {:.2f} GiB are available ({}){}",
       plan.model, gib(plan.total()), parts, gib(plan.limit.bytes), plan.limit.source,
       plan.would_fit.empty() ? std::string("; use a machine with more memory")
                              : "; would fit: " + fmt::format("{}", fmt::join(plan.would_fit, ", or ")));
}

}  // namespace llama3::runtime
