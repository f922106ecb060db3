// Llama 3.2 Vision against the independent float64 reference (tests/reference/mllama_reference.py,
// written from Meta's and Hugging Face's code): a small random multimodal model written by
// make_mllama_model.py in Meta's and Hugging Face's layouts, prompts with 0, 1, 2 and 3 images of
// different canvases. The engine must match the reference's vision tokens and logits at every
// position, both layouts bitwise alike, and stay far from the reference's controls (the same model
// with the cross-attention row mask, a gate, the image visibility, the encoder's mask or its
// feature layout done wrong), which shows these tests would catch each of those mistakes.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kernels/kv_pool.h"
#include "model/checkpoint_loader.h"
#include "model/llama_model.h"
#include "model/precision.h"
#include "mllama_fixture.h"
#include "vision/image_decode.h"
#include "vision/image_preprocess.h"
#include "vision/vision_encoder.h"

namespace llama3::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// fp32 activations against float64 over a few layers of O(1) values: measured max 1.1e-6 on the
// logits (std ~1) and 1.9e-6 on the vision tokens (AVX-512); the bounds leave 10x for other ISAs'
// summation orders and stay far below the controls' differences (0.48 and more).
constexpr double kLogitTolerance = 2e-5;
constexpr double kVisionTolerance = 2e-5;

const testing::MllamaFixture& fixture() { return testing::small_mllama(); }

std::unique_ptr<LlamaModel> load(const std::string& layout, const std::string& mode = "bf16") {
  LoadedCheckpoint c = load_checkpoint(fixture().dir / layout, std::nullopt, precision_mode(mode));
  return std::make_unique<LlamaModel>(std::move(c.config), std::move(c.weights));
}

std::vector<vision::ImageTiles> prompt_images(const LlamaModel& m, const json& prompt) {
  std::vector<vision::ImageTiles> out;
  for (const auto& name : prompt.at("images")) {
    const auto image = vision::load_image(fixture().dir / "images" / name.get<std::string>());
    out.push_back(vision::preprocess_image(image, m.config().vision.tile_size, m.config().vision.max_tiles));
  }
  return out;
}

// Logits at every position of the prompt, in one pass (an f32 KV cache: the reference's keys).
std::vector<float> prompt_logits(LlamaModel& m, const json& prompt, const CrossAttentionContext* override_ctx = nullptr) {
  const auto tokens = prompt.at("tokens").get<std::vector<int32_t>>();
  const auto tiles = prompt_images(m, prompt);
  const CrossAttentionContext ctx = m.image_context(tiles, tokens);
  KvCache cache(m.kv_config(), 4, 32, kernels::KvDType::F32);
  const std::vector<int32_t> table = {0, 1, 2, 3};
  const CrossAttentionContext* images = override_ctx ? override_ctx : (tiles.empty() ? nullptr : &ctx);
  const BatchItem item{tokens, 0, table, true, 0, images};
  std::vector<float> logits;
  m.forward({&item, 1}, cache, logits);
  return logits;
}

double max_diff(const std::vector<float>& got, const json& want_rows) {
  double worst = 0;
  size_t i = 0;
  for (const auto& row : want_rows) {
    for (const auto& v : row) worst = std::max(worst, std::abs(got.at(i++) - v.get<double>()));
  }
  EXPECT_EQ(i, got.size());
  return worst;
}

TEST(VisionReference, EncoderMatchesTheReferencesVisionTokens) {
  auto m = load("meta");
  const int64_t dim = m->config().dim;
  int checked = 0;
  for (const auto& prompt : fixture().expected.at("prompts")) {
    const auto tiles = prompt_images(*m, prompt);
    for (size_t i = 0; i < tiles.size(); ++i) {
      ASSERT_EQ((std::vector<int64_t>{tiles[i].tiles_h, tiles[i].tiles_w}), prompt.at("tiles").at(i).get<std::vector<int64_t>>());
      const auto e = vision::encode_image(m->config().vision, m->weights().vision, tiles[i].pixels, tiles[i].tiles_h,
                                          tiles[i].tiles_w);
      // The reference's tokens cover all max_tiles stacked tiles; ours the real ones, which come first.
      const auto& want = prompt.at("vision_tokens").at(i);
      ASSERT_EQ(e.tokens.size(), static_cast<size_t>(e.tiles * e.tokens_per_tile * dim));
      double worst = 0;
      for (size_t k = 0; k < e.tokens.size(); ++k) worst = std::max(worst, std::abs(e.tokens[k] - want.at(k).get<double>()));
      EXPECT_LT(worst, kVisionTolerance) << prompt.at("images").at(i);
      ++checked;
    }
  }
  EXPECT_GE(checked, 5);  // one, two and three images across the prompts
}

void expect_matches_reference(const std::string& layout) {
  auto m = load(layout);
  const int64_t vocab = m->config().vocab_size;
  for (const auto& prompt : fixture().expected.at("prompts")) {
    const auto logits = prompt_logits(*m, prompt);
    EXPECT_LT(max_diff(logits, prompt.at("logits")), kLogitTolerance) << layout << " " << prompt.at("tokens");
    const auto top1 = prompt.at("top1").get<std::vector<int32_t>>();
    const auto margins = prompt.at("margins").get<std::vector<double>>();
    for (size_t p = 0; p < top1.size(); ++p) {
      if (margins[p] < 2 * kLogitTolerance) continue;  // a near tie: either answer is right
      const float* row = logits.data() + p * static_cast<size_t>(vocab);
      EXPECT_EQ(std::max_element(row, row + vocab) - row, top1[p]) << layout << " position " << p;
    }
  }
}

TEST(VisionReference, MetaCheckpointMatchesTheReference) { expect_matches_reference("meta"); }
TEST(VisionReference, HuggingFaceCheckpointMatchesTheReference) { expect_matches_reference("hf"); }

TEST(VisionReference, MetaAndHuggingFaceLayoutsGiveTheSameBits) {
  auto meta = load("meta");
  auto hf = load("hf");
  for (const auto& prompt : fixture().expected.at("prompts")) {
    const auto a = prompt_logits(*meta, prompt);
    const auto b = prompt_logits(*hf, prompt);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << prompt.at("tokens") << " at " << i;
  }
}

// Each control is the reference with one thing done wrong; the engine must be far from it, so
// that the tolerance above could not pass an engine that made that mistake.
TEST(VisionReference, EngineIsFarFromEveryWrongVariant) {
  auto m = load("meta");
  int compared = 0;
  for (const auto& prompt : fixture().expected.at("prompts")) {
    const auto logits = prompt_logits(*m, prompt);
    for (const auto& [name, rows] : prompt.at("controls").items()) {
      const double control_distance = prompt.at("control_max_abs_diff").at(name).get<double>();
      if (control_distance == 0.0) continue;  // the same model for this prompt (e.g. no image)
      EXPECT_GT(max_diff(logits, rows), 100 * kLogitTolerance) << name << " " << prompt.at("tokens");
      ++compared;
    }
  }
  EXPECT_GE(compared, 12);
}

// The engine's own negative control: the same prompts with the images withheld (every row sees
// none, the cross layers are skipped) are far from the reference; text-only prompts equal it.
TEST(VisionReference, WithoutTheImagesTheAnswerChanges) {
  auto m = load("hf");
  for (const auto& prompt : fixture().expected.at("prompts")) {
    if (prompt.at("images").empty()) continue;
    const CrossAttentionContext none;  // no visibility entries: no row sees an image
    const auto logits = prompt_logits(*m, prompt, &none);
    EXPECT_GT(max_diff(logits, prompt.at("logits")), 100 * kLogitTolerance) << prompt.at("tokens");
  }
}

// The accuracy and performance modes run the encoder on 8-bit matrices (and the text model on
// 8-/4-bit ones): the vision tokens move by the rounding of 8-bit blocks, measured here against
// the same reference, relative to the tokens' own scale.
TEST(VisionReference, EightBitEncoderStaysNearTheReference) {
  auto m = load("meta", "accuracy");
  ASSERT_EQ(m->weights().vision.layers[0].wq.format, kernels::WeightFormat::Q8_0);
  ASSERT_EQ(m->weights().vision.patch_embedding.format, kernels::WeightFormat::BF16);  // 588 columns
  double worst = 0;
  for (const auto& prompt : fixture().expected.at("prompts")) {
    const auto tiles = prompt_images(*m, prompt);
    for (size_t i = 0; i < tiles.size(); ++i) {
      const auto e = vision::encode_image(m->config().vision, m->weights().vision, tiles[i].pixels, tiles[i].tiles_h,
                                          tiles[i].tiles_w);
      const auto& want = prompt.at("vision_tokens").at(i);
      double err = 0, norm = 0;
      for (size_t k = 0; k < e.tokens.size(); ++k) {
        const double w = want.at(k).get<double>();
        err += (e.tokens[k] - w) * (e.tokens[k] - w);
        norm += w * w;
      }
      worst = std::max(worst, std::sqrt(err / norm));
    }
  }
  // Relative RMS error: measured 0.011 (8-bit blocks over 4 layers and the projection); bf16
  // gives ~1e-6.
  EXPECT_LT(worst, 0.03);
  EXPECT_GT(worst, 1e-4);  // it did run on 8 bits
  auto bf16 = load("meta", "bf16");
  EXPECT_EQ(bf16->weights().vision.layers[0].wq.format, kernels::WeightFormat::BF16);
}

TEST(VisionReference, ImageCountMustMatchTheImageTokens) {
  auto m = load("meta");
  const auto& prompt = fixture().expected.at("prompts").at(2);  // two images
  const auto tokens = prompt.at("tokens").get<std::vector<int32_t>>();
  auto tiles = prompt_images(*m, prompt);
  std::vector<vision::ImageTiles> inputs{tiles[0]};
  try {
    (void)m->image_context(inputs, tokens);
    FAIL() << "one image for two image tokens was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 image tokens"), std::string::npos) << e.what();
  }
  inputs.push_back(tiles[1]);
  inputs.back().tiles_h = 3, inputs.back().tiles_w = 2;  // a canvas beyond max_tiles
  EXPECT_THROW((void)m->image_context(inputs, tokens), Error);
}

}  // namespace
}  // namespace llama3::model
