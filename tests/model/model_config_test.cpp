#include "model/model_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_support.h"

namespace llama3::model {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using nlohmann::json;

TEST(ModelConfig, PresetsHaveThePublishedShapes) {
  const ModelConfig p1 = preset("Llama-3.2-1B");
  EXPECT_EQ(p1.ffn_dim, 8192);
  EXPECT_EQ(p1.head_dim, 64);
  EXPECT_TRUE(p1.tied_embeddings);
  EXPECT_EQ(p1.rope_scaling.factor, 32.0);
  const ModelConfig p3 = preset("Llama-3.2-3B");
  EXPECT_EQ(p3.ffn_dim, 8192);
  EXPECT_EQ(p3.n_layers, 28);
  EXPECT_EQ(p3.head_dim, 128);
  EXPECT_TRUE(p3.tied_embeddings);
  const ModelConfig p8 = preset("Llama-3.1-8B");
  EXPECT_EQ(p8.ffn_dim, 14336);
  EXPECT_FALSE(p8.tied_embeddings);
  EXPECT_EQ(p8.rope_scaling.factor, 8.0);
  EXPECT_EQ(preset("Llama-3.1-70B").ffn_dim, 28672);
  EXPECT_EQ(preset("Llama-3.3-70B").n_layers, 80);
  EXPECT_EQ(preset("Llama-3.2-11B-Vision").cross_attention_before, (std::vector<int64_t>{3, 7, 11, 15, 19, 23, 27, 31}));
  for (const auto& name : preset_names()) {
    const ModelConfig c = preset(name);
    EXPECT_EQ(c.vocab_size, 128256);
    EXPECT_EQ(c.rope_theta, 500000.0);
    EXPECT_EQ(c.max_seq_len, 131072);
    EXPECT_EQ(c.norm_eps, 1e-5);
    EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
  }
  // 1B parameter count: 1.236 billion (tied).
  EXPECT_NEAR(static_cast<double>(p1.parameter_count()), 1.2358e9, 1e6);
  EXPECT_THAT([] { preset("Llama-2-7B"); }, ThrowsMessage<Error>(HasSubstr("Llama-3.2-1B")));
}

json meta_1b() {
  return json::parse(R"({"dim": 2048, "n_layers": 16, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
    "ffn_dim_multiplier": 1.5, "multiple_of": 256, "norm_eps": 1e-05, "rope_theta": 500000.0,
    "use_scaled_rope": true})");
}

TEST(ModelConfig, MetaParamsTakeTheRopeFactorFromTheModelIdentity) {
  const ModelConfig c = config_from_meta_params(meta_1b(), "params.json");
  EXPECT_EQ(c.name, "Llama-3.2-1B");
  EXPECT_EQ(c.ffn_dim, 8192);
  EXPECT_TRUE(c.rope_scaling.enabled);
  EXPECT_EQ(c.rope_scaling.factor, 32.0);  // not Meta's hard-coded 8
  json p8 = json::parse(R"({"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8, "vocab_size": 128256,
    "ffn_dim_multiplier": 1.3, "multiple_of": 1024, "norm_eps": 1e-05, "rope_theta": 500000.0,
    "use_scaled_rope": true})");
  const ModelConfig c8 = config_from_meta_params(p8, "params.json");
  EXPECT_EQ(c8.name, "Llama-3.1-8B");
  EXPECT_EQ(c8.ffn_dim, 14336);
  EXPECT_EQ(c8.rope_scaling.factor, 8.0);
}

TEST(ModelConfig, MetaParamsExplicitFactorWins) {
  json p = meta_1b();
  p["rope_scaling_factor"] = 16.0;
  EXPECT_EQ(config_from_meta_params(p, "params.json").rope_scaling.factor, 16.0);
}

TEST(ModelConfig, Llama30HasNoScalingAnd8kContext) {
  json p = meta_1b();
  p.erase("use_scaled_rope");
  const ModelConfig c = config_from_meta_params(p, "params.json");
  EXPECT_FALSE(c.rope_scaling.enabled);
  EXPECT_EQ(c.max_seq_len, 8192);
}

json hf_1b() {
  return json::parse(R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
    "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
    "vocab_size": 128256, "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "max_position_embeddings": 131072,
    "tie_word_embeddings": true, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
    "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"}})");
}

TEST(ModelConfig, HfConfigMatchesPreset) {
  const ModelConfig c = config_from_hf_config(hf_1b(), "config.json");
  const ModelConfig p = preset("Llama-3.2-1B");
  EXPECT_EQ(c.name, "Llama-3.2-1B");
  EXPECT_EQ(c.ffn_dim, p.ffn_dim);
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_TRUE(c.tied_embeddings);
  json unscaled = hf_1b();
  unscaled["rope_scaling"] = nullptr;
  EXPECT_FALSE(config_from_hf_config(unscaled, "config.json").rope_scaling.enabled);
}

TEST(ModelConfig, BadConfigsNameTheField) {
  json p = meta_1b();
  p.erase("dim");
  EXPECT_THAT([&] { config_from_meta_params(p, "params.json"); }, ThrowsMessage<Error>(HasSubstr("\"dim\"")));
  p = meta_1b();
  p["n_heads"] = "thirty-two";
  EXPECT_THAT([&] { config_from_meta_params(p, "params.json"); }, ThrowsMessage<Error>(HasSubstr("n_heads")));
  p = meta_1b();
  p["n_kv_heads"] = 5;
  EXPECT_THAT([&] { config_from_meta_params(p, "params.json"); }, ThrowsMessage<Error>(HasSubstr("n_kv_heads")));
  json h = hf_1b();
  h.erase("intermediate_size");
  EXPECT_THAT([&] { config_from_hf_config(h, "config.json"); }, ThrowsMessage<Error>(HasSubstr("intermediate_size")));
  h = hf_1b();
  h["architectures"] = {"MistralForCausalLM"};
  h["model_type"] = "mistral";
  EXPECT_THAT([&] { config_from_hf_config(h, "config.json"); }, ThrowsMessage<Error>(HasSubstr("unsupported architecture")));
  h = hf_1b();
  h["rope_scaling"]["rope_type"] = "yarn";
  EXPECT_THAT([&] { config_from_hf_config(h, "config.json"); }, ThrowsMessage<Error>(HasSubstr("yarn")));
  EXPECT_THAT([&] { config_from_hf_config(json::array(), "config.json"); }, ThrowsMessage<Error>(HasSubstr("JSON object")));
}

// Found by fuzz_json_inputs: "dim": 1.8e21 was converted to an integer (undefined behaviour), and
// 2048.5 would have been truncated silently. Integral floats (4096.0) are still integers.
TEST(ModelConfig, IntegerFieldsRefuseFractionsAndHugeNumbers) {
  for (const json& bad : {json(1.8446744073709552e21), json(2048.5), json(-1e300), json(18446744073709551615ull)}) {
    json p = meta_1b();
    p["dim"] = bad;
    EXPECT_THAT([&] { config_from_meta_params(p, "params.json"); },
                ThrowsMessage<Error>(HasSubstr("field \"dim\" must be an integer")))
        << bad;
  }
  json p = meta_1b();
  p["dim"] = 2048.0;
  EXPECT_EQ(config_from_meta_params(p, "params.json").dim, 2048);
  p = meta_1b();
  p["norm_eps"] = "small";
  EXPECT_THAT([&] { config_from_meta_params(p, "params.json"); }, ThrowsMessage<Error>(HasSubstr("must be a number")));
}

TEST(ModelConfig, LoadFromFolderReportsBadJsonAndMissingFiles) {
  testing::TempDir dir("config");
  EXPECT_THAT([&] { load_model_config(dir.path()); }, ThrowsMessage<Error>(HasSubstr("neither params.json")));
  testing::write_text(dir / "config.json", "{ not json");
  EXPECT_THAT([&] { load_model_config(dir.path()); }, ThrowsMessage<Error>(HasSubstr("invalid JSON")));
}

TEST(ModelConfig, TruncateLayers) {
  ModelConfig c = preset("Llama-3.2-1B");
  truncate_layers(c, 2);
  EXPECT_EQ(c.n_layers, 2);
  ModelConfig d = preset("Llama-3.2-1B");
  EXPECT_THAT([&] { truncate_layers(d, 17); }, ThrowsMessage<Error>(HasSubstr("has 16 layers")));
}

}  // namespace
}  // namespace llama3::model
