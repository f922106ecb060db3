// Llama 3.2 Vision through the CLI: `llama3 generate --image` on small random multimodal
// checkpoints (tests/mllama_fixture.h) against the float64 reference, the prompt forms that place
// images, the demo's "image" prompts, and bad input: one-line errors, never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "mllama_fixture.h"
#include "test_support.h"

namespace llama3::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

CommandResult generate(const fs::path& model, const std::string& args) {
  return run_command("env -u LLAMA_DIR -u HF_MODEL " + cli() + " generate --model_dir " + shell_quote(model.string()) +
                     " --optimizations bf16 --kv_cache f32 --weight_cache off " + args);
}

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

// The one-line error of a failed run: exit 1, one line on stderr.
void expect_one_line_error(const CommandResult& r, const std::string& what) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(what));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(VisionCli, GenerateWithImagesMatchesTheReference) {
  const MllamaFixture& f = small_mllama();
  TempDir tmp("vision-cli");
  for (const char* layout : {"meta", "hf"}) {
    for (const json& prompt : f.expected.at("prompts")) {
      if (prompt.at("images").empty()) continue;
      std::string images;
      for (const auto& name : prompt.at("images")) images += " --image " + shell_quote((f.dir / "images" / name.get<std::string>()).string());
      const auto r = generate(f.dir / layout, "--tokens " + join(prompt.at("tokens").get<std::vector<int32_t>>()) + images +
                                                  " --max_generated_tokens 1 --logits_all true --logits_out " +
                                                  (tmp / "logits.json").string());
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_THAT(r.err, HasSubstr("image encoder"));
      const json got = json::parse(read_text(tmp / "logits.json"));
      const json& want = prompt.at("logits");
      ASSERT_EQ(got.size(), want.size());
      double worst = 0;
      for (size_t p = 0; p < got.size(); ++p) {
        for (size_t v = 0; v < got[p].size(); ++v) worst = std::max(worst, std::abs(got[p][v].get<double>() - want[p][v].get<double>()));
      }
      // As VisionReference (tests/model): fp32 against float64, measured ~1e-6.
      EXPECT_LT(worst, 2e-5) << layout << " " << prompt.at("tokens");
    }
  }
}

TEST(VisionCli, TextPromptsPlaceTheImage) {
  const MllamaFixture& f = vocab_mllama();
  const std::string image = " --image " + shell_quote((f.dir / "images" / "wide.png").string());
  // No marker: the image token follows the BOS. A marker: it goes there. --chat: it opens the
  // user's message (after the header's blank line).
  auto prompt_of = [&](const std::string& args) {
    const auto r = generate(f.dir / "meta", args + " --max_generated_tokens 2");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out).at("prompt").get<std::vector<int32_t>>();
  };
  const auto plain = prompt_of("--prompt 'What is this?'" + image);
  ASSERT_GE(plain.size(), 3u);
  EXPECT_EQ(plain[0], 128000);
  EXPECT_EQ(plain[1], 128256);
  const auto marked = prompt_of("--prompt 'What is <|image|> this?'" + image);
  EXPECT_EQ(std::count(marked.begin(), marked.end(), 128256), 1);
  EXPECT_NE(marked[1], 128256);
  const auto chat = prompt_of("--prompt 'What is this?' --chat" + image);
  const auto at = std::find(chat.begin(), chat.end(), 128256);
  ASSERT_NE(at, chat.end());
  EXPECT_EQ(*(at - 1), 271);     // "\n\n" after <|end_header_id|>
  EXPECT_EQ(*(at - 2), 128007);  // <|end_header_id|>
  // The image changes the answer: the same text without it gives other logits.
  TempDir tmp("vision-cli-text");
  const auto with = generate(f.dir / "hf", "--tokens 128000,128256,3923 --max_generated_tokens 1 --logits_out " +
                                               (tmp / "a.json").string() + image);
  const auto tall = generate(f.dir / "hf", "--tokens 128000,128256,3923 --max_generated_tokens 1 --logits_out " +
                                               (tmp / "b.json").string() + " --image " +
                                               shell_quote((f.dir / "images" / "tall.jpg").string()));
  ASSERT_EQ(with.exit_code, 0) << with.err;
  ASSERT_EQ(tall.exit_code, 0) << tall.err;
  EXPECT_NE(read_text(tmp / "a.json"), read_text(tmp / "b.json"));
}

TEST(VisionCli, BadImagesAndCountsAreOneLineErrors) {
  const MllamaFixture& f = vocab_mllama();
  TempDir tmp("vision-cli-bad");
  { std::ofstream(tmp / "junk.png") << "\x89PNG\r\n\x1a\nnot really a png"; }
  {
    const std::string png = read_text(f.dir / "images" / "wide.png");
    std::ofstream(tmp / "cut.png", std::ios::binary) << png.substr(0, png.size() / 2);
  }
  const std::string wide = shell_quote((f.dir / "images" / "wide.png").string());
  expect_one_line_error(generate(f.dir / "meta", "--tokens 128000,128256,791 --image " + (tmp / "junk.png").string()),
                        "junk.png");
  expect_one_line_error(generate(f.dir / "meta", "--tokens 128000,128256,791 --image " + (tmp / "cut.png").string()),
                        "cut.png");
  expect_one_line_error(generate(f.dir / "meta", "--tokens 128000,791 --image " + wide), "0 image tokens");
  expect_one_line_error(generate(f.dir / "meta", "--tokens 128000,128256,128256,791 --image " + wide),
                        "2 image tokens (<|image|>, id 128256) for 1 images");
  expect_one_line_error(generate(f.dir / "meta", "--tokens 128000,128256,791"), "for 0 images");
  // A text-only model takes no image.
  const auto text_model = run_command(cli() + " generate --weights random --layers 1 --weight_cache off --tokens 128000,791 --image " + wide);
  expect_one_line_error(text_model, "text-only model");
  // Vision models run on one rank: a mesh is refused before anything loads.
  expect_one_line_error(run_command(cli() + " generate --model Llama-3.2-11B-Vision --weights random --layers 4 "
                                            "--weight_cache off --mesh N300 --tokens 128000,791"),
                        "it runs on one rank");
}

TEST(VisionCli, DemoPromptsCarryImages) {
  const MllamaFixture& f = vocab_mllama();
  TempDir tmp("vision-demo");
  fs::copy_file(f.dir / "images" / "wide.png", tmp / "wide.png");
  { std::ofstream(tmp / "bad.png") << "not an image"; }
  std::ofstream(tmp / "prompts.json") << R"([{"prompt": "What is in this picture?", "image": "wide.png"},
                                              {"prompt": "And this one?", "image": "bad.png"},
                                              {"prompt": "Plain text."}])";
  const auto r = run_command("env -u LLAMA_DIR -u HF_MODEL " + cli() + " demo --model_dir " +
                             shell_quote((f.dir / "hf").string()) + " --input_prompts " + (tmp / "prompts.json").string() +
                             " --batch_size 3 --max_generated_tokens 4 --weight_cache off --report " +
                             (tmp / "report.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("user 1: image 'image 1' is not a PNG or JPEG file"));  // it stops its user only
  const json users = json::parse(read_text(tmp / "report.json")).at("users");
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0]["images"], 1);
  // --instruct (the default): the image opens the user's message.
  const auto tokens = users[0]["prompt_tokens"].get<std::vector<int32_t>>();
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), 128256), 1);
  EXPECT_EQ(users[0]["generated_tokens"].size(), 4u);
  EXPECT_EQ(users[1]["stop_reason"], "error");
  EXPECT_EQ(users[2]["images"], 0);
  EXPECT_EQ(users[2]["generated_tokens"].size(), 4u);
}

}  // namespace
}  // namespace llama3::testing
