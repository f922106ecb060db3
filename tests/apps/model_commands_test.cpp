// The accuracy and bench commands, and the precision flags every model command takes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/checkpoint_writer.h"
#include "model/random_weights.h"
#include "test_support.h"
#include "tiny_model.h"

namespace llama3::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class ModelCommands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("model-commands");
    model::ModelConfig c = tiny_config(128256, true, 32.0);  // the real vocabulary: texts use the real tokenizer
    model::write_hf_folder(c, model::random_weights(c, 4), dir_->path());
  }
  static void TearDownTestSuite() { delete dir_; }
  static CommandResult run(const std::string& args) {
    return run_command("env -u LLAMA_DIR -u HF_MODEL " + cli() + " " + args + " --model_dir " + dir_->path().string());
  }
  static TempDir* dir_;
};
TempDir* ModelCommands::dir_ = nullptr;

TEST_F(ModelCommands, AccuracyComparesEachModeWithBf16) {
  TempDir out("accuracy-json");
  const auto r = run("accuracy --tokens 64 --decode_steps 2 --json " + (out / "a.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("mean top-1 probability"));
  const json j = json::parse(read_text(out / "a.json"));
  ASSERT_EQ(j["rows"].size(), 3u);  // bf16 itself, accuracy, performance
  EXPECT_EQ(j["rows"][0]["mode"], "bf16");
  EXPECT_EQ(j["rows"][0]["top1_agreement"], 1.0);
  EXPECT_EQ(j["rows"][0]["mean_kld"], 0.0);
  for (size_t i = 1; i < 3; ++i) {
    const double top1 = j["rows"][i]["top1_agreement"];
    EXPECT_GT(top1, 0.5);
    EXPECT_LE(top1, 1.0);
    EXPECT_GT(j["rows"][i]["mean_kld"].get<double>(), 0.0);  // quantized: not identical
    EXPECT_GT(j["rows"][i]["tokens_per_s_per_user"].get<double>(), 0.0);
  }
  // More bits, less divergence.
  EXPECT_LT(j["rows"][1]["mean_kld"].get<double>(), j["rows"][2]["mean_kld"].get<double>());
  EXPECT_GT(j["reference_mean_top1_prob"].get<double>(), 0.0);
}

TEST_F(ModelCommands, AccuracyOfOneModeAndItsErrors) {
  const auto r = run("accuracy --tokens 32 --decode_steps 0 --optimizations accuracy");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("accuracy"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("performance")));
  const auto too_long = run("accuracy --tokens 100000");
  EXPECT_NE(too_long.exit_code, 0);
  EXPECT_THAT(too_long.err, HasSubstr("--tokens 100000"));
}

TEST_F(ModelCommands, BenchReportsEveryFigureAgainstTheLimits) {
  TempDir out("bench-json");
  const auto r = run("bench --prefill 64 --decode 4 --context 8 --steps 2 --reps 1 --idle_wait 0 --max_redo 0 "
                     "--batch_sizes 1,3 --json " +
                     (out / "b.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(read_text(out / "b.json"));
  EXPECT_GT(j["read_bandwidth_gb_per_s"].get<double>(), 0.1);
  EXPECT_GT(j["peak_fp32_fma_gflops"].get<double>(), 0.1);
  EXPECT_EQ(j["mode"], "performance");
  EXPECT_GT(j["prefill"]["tokens_per_s"]["best"].get<double>(), 0.0);
  EXPECT_GE(j["prefill"]["tokens_per_s"]["best"].get<double>(), j["prefill"]["tokens_per_s"]["median"].get<double>());
  EXPECT_GT(j["decode"]["fraction_of_bandwidth"].get<double>(), 0.0);
  ASSERT_EQ(j["batches"].size(), 2u);
  EXPECT_EQ(j["batches"][1]["batch"], 3);
  // A 2-layer model of dim 64 reads its LM head (128256 x 64) and 2 layers per token, in the mode's formats.
  EXPECT_GT(j["weight_bytes_per_token"].get<double>(), 128256.0 * 64);
  EXPECT_LT(j["weight_bytes_per_token"].get<double>(), 128256.0 * 64 * 2);
}

TEST_F(ModelCommands, BenchAttentionTimesEveryLayerAndAPrefillChunk) {
  TempDir out("bench-attention");
  const auto r = run("bench --prefill 0 --decode 0 --context 100 --context_fill synthetic --batch_sizes 1 --steps 1 "
                     "--reps 1 --idle_wait 0 --max_redo 0 --attention --attention_chunk 16 --json " +
                     (out / "b.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("caches scrubbed before each call"));
  const json a = json::parse(read_text(out / "b.json"))["attention"];
  EXPECT_EQ(a["context"], 100);
  ASSERT_EQ(a["decode_layers"].size(), 2u);  // the tiny model's layers, each timed
  for (const json& layer : a["decode_layers"]) {
    EXPECT_GT(layer["ms"].get<double>(), 0.0);
    EXPECT_GT(layer["fraction_of_bandwidth"].get<double>(), 0.0);
  }
  EXPECT_EQ(a["prefill"]["chunk"], 16);
  EXPECT_GT(a["prefill"]["fraction_of_fp32_fma_peak"].get<double>(), 0.0);
}

TEST_F(ModelCommands, GenerateWritesTheTopLogitsOfEveryPosition) {
  TempDir out("logits-top");
  const auto r = run("generate --tokens 128000,791,1234 --max_generated_tokens 1 --logits_all true --logits_top 3 "
                     "--logits_out " + (out / "l.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json rows = json::parse(read_text(out / "l.json"));
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& row : rows) {
    ASSERT_EQ(row["ids"].size(), 3u);
    EXPECT_GE(row["logits"][0].get<float>(), row["logits"][1].get<float>());
  }
  EXPECT_EQ(rows[2]["ids"][0], json::parse(r.out)["generated"][0]);  // greedy = the last row's top-1
}

TEST_F(ModelCommands, PrecisionFlagsAreCheckedAndShown) {
  const auto ok = run("generate --tokens 128000,791 --max_generated_tokens 2 --optimizations accuracy "
                      "--precision '{\"ff1_3\":\"q4\"}'");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  for (const auto& [flags, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--optimizations fast", "fast"},
           {"--precision '{\"ff1_3\":\"q3\"}'", "q3"},
           {"--precision '{'", "not valid JSON"},
           {"--precision '{\"bogus\":\"q8\"}'", "unknown key"},
           {"--weight_cache maybe", "maybe"},
           {"--kv_cache f32 --precision '{\"kv_cache\":\"bf16\"}'", "contradicts"}}) {
    const auto r = run("generate --tokens 128000 --max_generated_tokens 1 " + flags);
    EXPECT_NE(r.exit_code, 0) << flags;
    EXPECT_LT(r.exit_code, 128) << flags;
    EXPECT_THAT(r.err, HasSubstr(needle)) << flags;
  }
}

}  // namespace
}  // namespace llama3::testing
