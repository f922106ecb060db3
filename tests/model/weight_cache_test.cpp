// The weight cache: what it stores comes back bitwise, where it lives, and that a stale, corrupt
// or unwritable cache is never used (a warning, then the weights are converted again).
#include "model/weight_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "model/checkpoint_writer.h"
#include "model/forward_helpers.h"
#include "model/model_factory.h"
#include "model/random_weights.h"
#include "test_support.h"

namespace llama3::model {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using ::testing::HasSubstr;

LoadedCheckpoint random_checkpoint(const std::string& mode, bool tied) {
  const ModelConfig c = testing::tiny_config(300, tied);
  return {c, random_weights(c, 5, precision_mode(mode)), CheckpointFormat::HuggingFace};
}

std::vector<float> logits_of(LoadedCheckpoint ckpt) {
  LlamaModel m(std::move(ckpt.config), std::move(ckpt.weights));
  return full_logits(m, tokens(12, 3), kernels::KvDType::F32);
}

class CacheRoundTrip : public ::testing::TestWithParam<std::tuple<const char*, bool>> {};

TEST_P(CacheRoundTrip, ReadBackGivesBitwiseTheSameModel) {
  const auto [mode, tied] = GetParam();
  TempDir dir("weight-cache");
  const fs::path path = dir / "w.gguf";
  write_weight_cache(path, "key-1", random_checkpoint(mode, tied));
  std::string warning;
  auto cached = read_weight_cache(path, "key-1", warning);
  ASSERT_TRUE(cached.has_value()) << warning;
  EXPECT_TRUE(warning.empty());
  EXPECT_EQ(cached->weights.tied(), tied);
  EXPECT_EQ(cached->config.n_layers, 2);
  EXPECT_EQ(cached->weights.layers[0].w1.format, random_checkpoint(mode, tied).weights.layers[0].w1.format);
  EXPECT_EQ(logits_of(std::move(*cached)), logits_of(random_checkpoint(mode, tied)));
}

INSTANTIATE_TEST_SUITE_P(Modes, CacheRoundTrip,
                         ::testing::Combine(::testing::Values("performance", "accuracy", "bf16"), ::testing::Bool()));

TEST(WeightCache, AnotherKeyOrACorruptFileIsNeverUsed) {
  TempDir dir("weight-cache-bad");
  const fs::path path = dir / "w.gguf";
  std::string warning;
  EXPECT_FALSE(read_weight_cache(path, "k", warning).has_value());  // absent: no warning
  EXPECT_TRUE(warning.empty());
  write_weight_cache(path, "k", random_checkpoint("performance", false));
  EXPECT_FALSE(read_weight_cache(path, "other", warning).has_value());
  EXPECT_THAT(warning, HasSubstr("built for other weights or settings"));
  fs::resize_file(path, fs::file_size(path) / 2);
  warning.clear();
  EXPECT_FALSE(read_weight_cache(path, "k", warning).has_value());
  EXPECT_THAT(warning, HasSubstr("unreadable"));
}

TEST(WeightCache, LivesNextToTheCheckpointPerMeshAndMode) {
  TempDir dir("weight-cache-where");
  const ModelConfig c = testing::tiny_config(300);
  write_hf_folder(c, random_weights(c, 1), dir.path());
  const PrecisionMap perf = precision_mode("performance");
  const CacheLocation a = cache_location({dir.path(), "", 0, std::nullopt, "N150"}, perf);
  EXPECT_EQ(a.path, dir / "N150" / "performance" / "weights.gguf");
  const CacheLocation b = cache_location({dir.path(), "", 0, 1, "T3K"}, perf);
  EXPECT_EQ(b.path, dir / "T3K" / "performance" / "weights-layers1.gguf");
  EXPECT_NE(a.key, b.key);
  const CacheLocation custom = cache_location({dir.path(), "", 0, std::nullopt, "N150"},
                                              make_precision("accuracy", R"({"ff1_3":"q4"})"));
  EXPECT_THAT(custom.path.parent_path().filename().string(), HasSubstr("custom-"));
  const CacheLocation random = cache_location({std::nullopt, "Llama-3.2-1B", 7, 2, "N150"}, perf);
  EXPECT_THAT(random.path.string(), HasSubstr("random-Llama-3.2-1B-seed7"));
  // The key follows the files: touching a weight file's contents changes it.
  {
    std::ofstream f(dir / "model.safetensors", std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(16);
    f.put('x');
  }
  EXPECT_NE(cache_location({dir.path(), "", 0, std::nullopt, "N150"}, perf).key, a.key);
}

class OpenModelCache : public ::testing::Test {
 protected:
  void SetUp() override { setenv("LLAMA3_CACHE", (cache_root_ / "user").c_str(), 1); }
  TempDir cache_root_{"open-model-cache"};
};

TEST_F(OpenModelCache, FirstRunWritesLaterRunsMapAndComputeTheSame) {
  TempDir dir("open-model-src");
  const ModelConfig c = testing::tiny_config(300);
  write_hf_folder(c, random_weights(c, 2), dir.path());
  ModelRequest r;
  r.model_dir = dir.path().string();
  r.optimizations = "accuracy";
  OpenedModel first = open_model(r);
  EXPECT_THAT(first.cache, HasSubstr("written"));
  OpenedModel second = open_model(r);
  EXPECT_THAT(second.cache, HasSubstr("loaded"));
  EXPECT_EQ(full_logits(*first.model, tokens(9, 1), kernels::KvDType::F32),
            full_logits(*second.model, tokens(9, 1), kernels::KvDType::F32));
  r.weight_cache = false;
  EXPECT_EQ(open_model(r).cache, "off");
  r.weight_cache = true;
  r.optimizations = "bf16";  // a bf16 checkpoint run in bf16 is used in place
  EXPECT_EQ(open_model(r).cache, "not needed");
}

// A checkpoint folder the cache cannot be written into (here `N150` is a file, which stops even
// root; a read-only folder does the same for other users): the cache goes under $LLAMA3_CACHE.
TEST_F(OpenModelCache, AnUnwritableCheckpointFolderCachesUnderTheUserCache) {
  TempDir dir("open-model-ro");
  const ModelConfig c = testing::tiny_config(300);
  write_hf_folder(c, random_weights(c, 2), dir.path());
  std::ofstream(dir / "N150") << "not a folder";
  ModelRequest r;
  r.model_dir = dir.path().string();
  const OpenedModel m = open_model(r);
  EXPECT_THAT(m.cache, HasSubstr("written " + (cache_root_ / "user").string()));
  EXPECT_THAT(open_model(r).cache, HasSubstr("loaded " + (cache_root_ / "user").string()));
}

TEST_F(OpenModelCache, NoWritableLocationRunsWithoutTheCache) {
  TempDir dir("open-model-nowhere");
  const ModelConfig c = testing::tiny_config(300);
  write_hf_folder(c, random_weights(c, 2), dir.path());
  std::ofstream(dir / "N150") << "not a folder";
  std::ofstream(cache_root_ / "user") << "not a folder either";
  ModelRequest r;
  r.model_dir = dir.path().string();
  const OpenedModel m = open_model(r);
  EXPECT_THAT(m.cache, HasSubstr("not written"));
  EXPECT_EQ(m.model->config().n_layers, 2);  // the run goes on
}

}  // namespace
}  // namespace llama3::model
