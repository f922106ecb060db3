// Writing weights in a real checkpoint format and loading them back gives the same model. (The
// proof that the loader reads real checkpoints as their authors meant is reference_test.cpp,
// against independent Python-written files; this checks our own writers and the loader agree.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "model/checkpoint_loader.h"
#include "model/checkpoint_writer.h"
#include "model/llama_model.h"
#include "model/model_source.h"
#include "model/random_weights.h"
#include "test_support.h"
#include "tiny_model.h"

namespace llama3::model {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

ModelConfig config(bool tied) { return testing::tiny_config(300, tied, 32.0); }

std::vector<float> logits_of(LlamaModel& m) {
  const std::vector<int32_t> seq = {1, 50, 7, 299, 3, 3, 120, 8, 64, 0, 11};
  KvCache cache(m.config(), 4, 16, kernels::KvDType::F32);
  std::vector<int32_t> table(4);
  std::iota(table.begin(), table.end(), 0);
  std::vector<float> logits;
  const BatchItem item{seq, 0, table, true};
  m.forward({&item, 1}, cache, logits);
  return logits;
}

class RoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(RoundTrip, HuggingFaceFolderLoadsToTheSameModel) {
  const ModelConfig c = config(GetParam());
  LlamaModel original(c, random_weights(c, 5));
  testing::TempDir dir("hf-roundtrip");
  write_hf_folder(c, original.weights(), dir.path());
  LoadedCheckpoint loaded = load_checkpoint(dir.path());
  EXPECT_EQ(loaded.format, CheckpointFormat::HuggingFace);
  EXPECT_EQ(loaded.config.tied_embeddings, GetParam());
  EXPECT_EQ(loaded.config.rope_scaling.factor, 32.0);
  LlamaModel reloaded(loaded.config, std::move(loaded.weights));
  EXPECT_EQ(logits_of(original), logits_of(reloaded));  // same bf16 values, same arithmetic
}

TEST_P(RoundTrip, RepackedMetaSafetensorsLoadsToTheSameModel) {
  const ModelConfig c = config(GetParam());
  LlamaModel original(c, random_weights(c, 6));
  testing::TempDir dir("meta-roundtrip");
  write_meta_safetensors(c, original.weights(), dir.path());
  // params.json as Meta writes it: the FFN size comes from multiple_of and the multiplier
  // (floor(2 * 4 * 64 / 3) = 170; int(170 * 96.5 / 170) = 96, rounded up to a multiple of 1).
  nlohmann::json params = {{"dim", 64}, {"n_layers", 2}, {"n_heads", 4}, {"n_kv_heads", 2}, {"vocab_size", 300},
                           {"multiple_of", 1}, {"ffn_dim_multiplier", 96.5 / 170.0}, {"norm_eps", 1e-5},
                           {"rope_theta", 500000.0}, {"use_scaled_rope", true}, {"rope_scaling_factor", 32.0}};
  testing::write_text(dir / "params.json", params.dump());
  LoadedCheckpoint loaded = load_checkpoint(dir.path());
  EXPECT_EQ(loaded.format, CheckpointFormat::Meta);
  EXPECT_EQ(loaded.config.ffn_dim, 96);
  LlamaModel reloaded(loaded.config, std::move(loaded.weights));
  EXPECT_EQ(logits_of(original), logits_of(reloaded));
}

INSTANTIATE_TEST_SUITE_P(TiedAndUntied, RoundTrip, ::testing::Bool());

TEST(CheckpointLoader, WrongShapesAndMissingTensorsAreNamed) {
  const ModelConfig c = config(false);
  LlamaModel original(c, random_weights(c, 5));
  testing::TempDir dir("hf-bad");
  write_hf_folder(c, original.weights(), dir.path());
  // Claim a bigger FFN than the tensors have.
  auto cfg = nlohmann::json::parse(testing::read_text(dir / "config.json"));
  cfg["intermediate_size"] = 128;
  testing::write_text(dir / "config.json", cfg.dump());
  EXPECT_THAT([&] { load_checkpoint(dir.path()); },
              ThrowsMessage<Error>(AllOf(HasSubstr("mlp.gate_proj.weight"), HasSubstr("expected [128, 64]"))));
  cfg["intermediate_size"] = 96;
  cfg["num_hidden_layers"] = 3;  // a layer the file does not have
  testing::write_text(dir / "config.json", cfg.dump());
  EXPECT_THAT([&] { load_checkpoint(dir.path()); }, ThrowsMessage<Error>(HasSubstr("model.layers.2.")));
}

TEST(CheckpointLoader, LayersOptionKeepsTheFirstLayersOnly) {
  const ModelConfig c = config(true);
  LlamaModel original(c, random_weights(c, 5));
  testing::TempDir dir("hf-layers");
  write_hf_folder(c, original.weights(), dir.path());
  EXPECT_EQ(load_checkpoint(dir.path(), 1).config.n_layers, 1);
  EXPECT_THROW(load_checkpoint(dir.path(), 3), Error);
}

TEST(ModelSource, LlamaDirAndHfModelTogetherIsAnError) {
  testing::TempDir a("src-a"), b("src-b");
  ::setenv("LLAMA_DIR", a.path().c_str(), 1);
  ::setenv("HF_MODEL", b.path().c_str(), 1);
  EXPECT_THAT([] { resolve_model_dir(std::nullopt); }, ThrowsMessage<Error>(HasSubstr("both LLAMA_DIR")));
  EXPECT_EQ(*resolve_model_dir(a.path().string()), a.path());  // --model_dir overrides both
  ::unsetenv("HF_MODEL");
  EXPECT_EQ(*resolve_model_dir(std::nullopt), a.path());
  ::unsetenv("LLAMA_DIR");
  EXPECT_FALSE(resolve_model_dir(std::nullopt).has_value());
}

TEST(ModelSource, HfRepoIdResolvesOfflineInTheCache) {
  testing::TempDir home("hf-home");
  const auto snap = home.path() / "hub" / "models--meta-llama--Llama-3.2-1B" / "snapshots" / "abc123";
  std::filesystem::create_directories(snap);
  std::filesystem::create_directories(home.path() / "hub" / "models--meta-llama--Llama-3.2-1B" / "refs");
  testing::write_text(home.path() / "hub" / "models--meta-llama--Llama-3.2-1B" / "refs" / "main", "abc123");
  ::setenv("HF_HOME", home.path().c_str(), 1);
  ::setenv("HF_MODEL", "meta-llama/Llama-3.2-1B", 1);
  EXPECT_EQ(*resolve_model_dir(std::nullopt), snap);
  ::setenv("HF_MODEL", "meta-llama/Llama-3.2-3B", 1);
  EXPECT_THROW(resolve_model_dir(std::nullopt), Error);  // not in the cache: never downloaded
  ::unsetenv("HF_MODEL");
  ::unsetenv("HF_HOME");
}

}  // namespace
}  // namespace llama3::model
