// The memory plan: what a run needs, against what is available, before anything is loaded.
#include "runtime/memory_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "llama3/engine.h"
#include "model/precision.h"
#include "model/random_weights.h"
#include "runtime/rss.h"
#include "mesh_model.h"
#include "tiny_model.h"

namespace llama3::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

size_t matrix_bytes(const model::ModelWeights& w) {
  size_t sum = w.output.bytes() + (w.tok_embeddings.data == w.output.data ? 0 : w.tok_embeddings.bytes());
  for (const auto& L : w.layers) {
    for (const model::Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w1, &L.w3, &L.w2}) sum += m->bytes();
  }
  return sum;
}

// The estimate from shapes and formats is what the loader builds, in every mode, tied or not.
// Exact: the estimate counts the matrices' blocks, which is all the loader allocates for them.
TEST(MemoryPlan, WeightEstimateIsWhatRandomWeightsAllocateInEveryMode) {
  for (const bool tied : {false, true}) {
    const model::ModelConfig c = testing::tiny_config(320, tied);
    for (const char* mode : {"bf16", "accuracy", "performance"}) {
      const model::PrecisionMap p = model::make_precision(mode);
      const model::ModelWeights w = model::random_weights(c, 1, p);
      EXPECT_EQ(model::estimated_weight_bytes(c, p), matrix_bytes(w)) << mode << (tied ? " tied" : "");
    }
  }
}

// A rank of a mesh allocates its share: the estimate of a share is what that rank's random
// weights allocate, for every rank of 2 and 8 (the last one's vocabulary slice is shorter).
TEST(MemoryPlan, ShareEstimateIsWhatARanksWeightsAllocate) {
  const model::ModelConfig c = testing::mesh_config(true, false);  // 8 heads on 2 kv heads, untied
  const model::PrecisionMap p = model::make_precision("performance");
  for (int ranks : {2, 8}) {
    for (int rank = 0; rank < ranks; ++rank) {
      const model::ShardPlan share = model::shard_plan(c, rank, ranks);
      EXPECT_EQ(model::estimated_weight_bytes(c, p, share), matrix_bytes(model::random_weights(c, 1, p, share)))
          << rank << " of " << ranks;
    }
  }
}

model::ModelRequest preset_request(const char* preset, std::optional<int64_t> layers = std::nullopt) {
  model::ModelRequest r;
  r.preset = preset;
  r.weights = "random";
  r.layers = layers;
  return r;
}

RunShape small_shape() {
  RunShape s;
  s.batch = 4;
  s.step_tokens = 260;
  s.logit_rows = 5;
  s.kv_bytes = size_t{100} << 20;
  return s;
}

TEST(MemoryPlan, PartsAddUpAndTheLimitDecides) {
  const model::ModelRequest r = preset_request("Llama-3.2-1B", 2);
  const model::ModelPlan m = model::plan_model(r);
  const MemoryPlan plan = plan_memory(r, m, small_shape(), {size_t{4} << 30, "test"});
  ASSERT_EQ(plan.items.size(), 4u);
  EXPECT_EQ(plan.items[0].bytes, m.weight_bytes);
  EXPECT_EQ(plan.items[1].bytes, size_t{100} << 20);
  EXPECT_EQ(plan.items[2].bytes, model::LlamaModel::activation_bytes(m.config, 260, 5));
  EXPECT_EQ(plan.total(), m.weight_bytes + (size_t{100} << 20) + plan.items[2].bytes + kRuntimeOverheadBytes);
  EXPECT_TRUE(plan.fits());
  EXPECT_NO_THROW(require_fits(plan));
  EXPECT_THAT(describe(plan), HasSubstr("fits"));

  const MemoryPlan tight = plan_memory(r, m, small_shape(), {plan.total() - 1, "test"});
  EXPECT_FALSE(tight.fits());
  EXPECT_THAT(describe(tight), HasSubstr("does not fit"));
  const MemoryPlan exact = plan_memory(r, m, small_shape(), {plan.total(), "test"});
  EXPECT_TRUE(exact.fits());
  EXPECT_TRUE(plan_memory(r, m, small_shape(), {0, "unknown"}).fits());  // nothing known: nothing refused
}

// The activations grow with the tokens of a pass and the rows of logits, by the model's widths.
TEST(MemoryPlan, ActivationsScaleWithTokensAndLogitRows) {
  const model::ModelConfig c = model::preset("Llama-3.1-8B");
  const size_t one = model::LlamaModel::activation_bytes(c, 1, 0);
  EXPECT_EQ(model::LlamaModel::activation_bytes(c, 512, 0), 512 * one);
  EXPECT_EQ(model::LlamaModel::activation_bytes(c, 1, 32) - one, size_t{32} * 128256 * 4);
  // At least the floats of x, the two MLP halves and the logits a pass really holds.
  EXPECT_GE(one, static_cast<size_t>(c.dim + 2 * c.ffn_dim) * 4);
}

// The 70B in performance mode is ~53 GiB of weights: refused on a 24 GiB machine with the figures
// and the largest layer count that fits, which does fit while one more does not.
TEST(MemoryPlan, SeventyBOnASmallMachineSuggestsTheLayersThatFit) {
  const MemoryLimit limit{size_t{22} << 30, "--memory_limit 22 GiB"};
  model::ModelRequest r = preset_request("Llama-3.1-70B");
  const MemoryPlan plan = plan_memory(r, model::plan_model(r), small_shape(), limit);
  ASSERT_FALSE(plan.fits());
  try {
    require_fits(plan);
    FAIL() << "a plan over the limit was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_THAT(m, HasSubstr("not enough memory for Llama-3.1-70B, 80 layers"));
    EXPECT_THAT(m, HasSubstr("but 22.00 GiB are available (--memory_limit 22 GiB)"));
    EXPECT_THAT(m, HasSubstr("weights 53."));
    EXPECT_THAT(m, HasSubstr("would fit: --layers "));
    EXPECT_EQ(m.find('\n'), std::string::npos);
  }
  ASSERT_FALSE(plan.would_fit.empty());
  const int64_t layers = std::stoll(plan.would_fit[0].substr(std::string("--layers ").size()));
  ASSERT_GT(layers, 1);
  // The KV cache scales with the layers too.
  auto with_layers = [&](int64_t n) {
    model::ModelRequest rn = preset_request("Llama-3.1-70B", n);
    RunShape s = small_shape();
    s.kv_bytes = small_shape().kv_bytes * static_cast<size_t>(n) / 80;
    return plan_memory(rn, model::plan_model(rn), s, limit);
  };
  EXPECT_TRUE(with_layers(layers).fits());
  EXPECT_FALSE(with_layers(layers + 1).fits());
  // ... or a mesh of machines, each holding its share; and on that mesh, rank 0's plan is its share.
  EXPECT_THAT(plan.would_fit, ::testing::Contains(HasSubstr("a mesh of 4 machines like this one (mpirun -np 4")));
  r.mesh = "4x1";
  const model::ModelPlan share = model::plan_model(r);
  EXPECT_EQ(share.share.ranks, 4);
  EXPECT_EQ(share.kv_config.n_kv_heads, 2);
  const double whole = static_cast<double>(model::plan_model(preset_request("Llama-3.1-70B")).weight_bytes);
  EXPECT_NEAR(static_cast<double>(share.weight_bytes), whole / 4, 1e6);
  const MemoryPlan on_mesh = plan_memory(r, share, small_shape(), limit);
  EXPECT_TRUE(on_mesh.fits());
  EXPECT_THAT(on_mesh.model, HasSubstr("rank 0's share of mesh 4x1 (each rank holds 1/4)"));
}

TEST(MemoryPlan, ALighterModeOrASmallerPoolIsSuggestedWhenItFits) {
  model::ModelRequest r = preset_request("Llama-3.1-8B");
  r.optimizations = "bf16";
  const model::ModelPlan bf16 = model::plan_model(r);  // ~15 GiB
  const MemoryPlan plan = plan_memory(r, bf16, small_shape(), {size_t{12} << 30, "test"});
  ASSERT_FALSE(plan.fits());
  EXPECT_THAT(plan.would_fit, ::testing::Contains(HasSubstr("--optimizations accuracy")));
  EXPECT_THAT(plan.would_fit, ::testing::Contains(HasSubstr("--optimizations performance")));
  // The KV pool is what overflows: the pool that would fit is named, and it does fit.
  RunShape big_pool = small_shape();
  big_pool.kv_bytes = size_t{20} << 30;
  const MemoryPlan pool = plan_memory(r, bf16, big_pool, {size_t{20} << 30, "test"});
  ASSERT_FALSE(pool.fits());
  EXPECT_THAT(pool.would_fit, ::testing::Contains(HasSubstr("a KV cache of at most")));
  EXPECT_THAT(pool.would_fit, Not(::testing::Contains(HasSubstr("--optimizations accuracy"))));
}

TEST(MemoryPlan, LimitIsForcedOrReadFromTheMachine) {
  EXPECT_EQ(detect_memory_limit(1.5).bytes, static_cast<size_t>(1.5 * kGiB));
  EXPECT_EQ(detect_memory_limit(1.5).source, "--memory_limit 1.5 GiB");
  EXPECT_THROW(detect_memory_limit(0.0), Error);
  EXPECT_THROW(detect_memory_limit(-3.0), Error);
  const MemoryLimit machine = detect_memory_limit(std::nullopt);
  ASSERT_GT(machine.bytes, 0u);
  // Never more than MemAvailable (the cgroup can only lower it); read moments apart.
  EXPECT_LE(static_cast<double>(machine.bytes), 1.1 * static_cast<double>(available_memory_bytes()));
}

EngineOptions one_layer_engine() {
  EngineOptions o;
  o.model.weights = "random";
  o.model.layers = 1;
  o.model.weight_cache = false;
  o.max_batch = 2;
  o.max_seq_len = 256;
  return o;
}

// The engine refuses before loading, with the plan's one-line error as an EngineError.
TEST(MemoryPlan, EngineRefusesAPlanOverItsLimit) {
  EngineOptions o = one_layer_engine();
  o.memory_limit_gb = 0.25;  // below the 1B's embedding and head alone
  const MemoryPlanReport report = Engine::plan_memory(o);
  EXPECT_FALSE(report.fits);
  EXPECT_THAT(report.text, HasSubstr("does not fit"));
  try {
    Engine engine(o);
    FAIL() << "the engine started over its memory limit";
  } catch (const EngineError& e) {
    EXPECT_EQ(e.kind(), EngineError::Kind::invalid_request);
    EXPECT_EQ(std::string(e.what()), report.error);
    EXPECT_THAT(e.what(), HasSubstr("not enough memory"));
  }
}

// The plan printed (--dry_run) is the one enforced: its KV cache is the pool the engine builds.
TEST(MemoryPlan, TheEnginesPlanIsThePoolItBuilds) {
  EngineOptions o = one_layer_engine();
  o.kv_memory_gb = 0.01;
  const MemoryPlanReport report = Engine::plan_memory(o);
  ASSERT_TRUE(report.fits) << report.text;
  const Engine engine(o);
  const double kv_gib = static_cast<double>(engine.model_info().kv_cache_bytes) / kGiB;
  EXPECT_THAT(report.text, HasSubstr(fmt::format("{:>9.3f} GiB  KV cache", kv_gib)));
}

}  // namespace
}  // namespace llama3::runtime
