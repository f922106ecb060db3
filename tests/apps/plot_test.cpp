// `llama3 plot`: a demo report made by the demo itself, a stress report, and a bench result drawn
// by gnuplot as PNG and SVG; every kind of bad input a clear one-line error.
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

class PlotTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("plot");
    model::ModelConfig c = tiny_config(128256, true, 32.0);
    model::write_hf_folder(c, model::random_weights(c, 6), dir_->path() / "model");
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::filesystem::path path(const std::string& name) { return dir_->path() / name; }
  static CommandResult plot(const std::string& args) { return run_command(cli() + " plot " + args); }
  static CommandResult demo(const std::string& args) {
    return run_command("env -u LLAMA_DIR -u HF_MODEL " + cli() + " demo --model_dir " + path("model").string() + " " +
                       args);
  }
  static TempDir* dir_;
};
TempDir* PlotTest::dir_ = nullptr;

// A bench result as `llama3 bench --json` writes it (the fields the roofline reads).
json bench_result() {
  return {{"model", "Llama-3.2-1B"},
          {"layers", 16},
          {"mode", "performance"},
          {"threads", 2},
          {"isa", "avx512"},
          {"read_bandwidth_gb_per_s", 29.0},
          {"peak_fp32_fma_gflops", 470.0},
          {"peak_vpdpbusd_gops", 1880.0},
          {"weight_bytes_per_token", 0.9e9},
          {"ops_per_token", {{"bf16", 0.0}, {"int8", 2.4e9}}},
          {"ideal_seconds", {{"decode_token", 0.0016}, {"layers_per_token", 0.001}, {"lm_head", 0.0006}}},
          {"prefill", {{"tokens", 512}, {"tokens_per_s", {{"best", 340.0}, {"median", 330.0}}}}},
          {"batches", json::array({{{"batch", 1}, {"tokens_per_s", {{"best", 27.0}, {"median", 26.5}}}},
                                   {{"batch", 8}, {"tokens_per_s", {{"best", 140.0}, {"median", 138.0}}}},
                                   {{"batch", 32}, {"tokens_per_s", {{"best", 247.0}, {"median", 240.0}}}}})}};
}

TEST_F(PlotTest, ADemoReportBecomesTokensPerSecondAndTtftCharts) {
  const auto r = demo("--batch_size 4 --max_generated_tokens 20 --report " + path("demo.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto png = plot(path("demo.json").string() + " -o " + path("demo.png").string());
  ASSERT_EQ(png.exit_code, 0) << png.err;
  EXPECT_EQ(read_text(path("demo.png")).substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  const auto svg = plot(path("demo.json").string() + " -o " + path("demo.svg").string());
  ASSERT_EQ(svg.exit_code, 0) << svg.err;
  const std::string text = read_text(path("demo.svg"));
  EXPECT_THAT(text, HasSubstr("tokens/s/user per decode iteration"));
  EXPECT_THAT(text, HasSubstr("time to first token (ms)"));
  EXPECT_THAT(text, HasSubstr("decode iteration"));
}

TEST_F(PlotTest, AStressReportShowsMemoryOverTheRun) {
  TempDir prompts("plot-stress");
  write_text(prompts / "p.json", R"([{"prompt": "Tell me a story."}])");
  const auto r = demo("--stress_test true --batch_size 2 --max_seq_len 48 --max_generated_tokens 300 --input_prompts " +
                      (prompts / "p.json").string() + " --report " + path("stress.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(read_text(path("stress.json")));
  ASSERT_GE(report["rss_samples"].size(), 3u) << "one sample every 64 iterations and the last";
  const auto svg = plot(path("stress.json").string() + " -o " + path("stress.svg").string());
  ASSERT_EQ(svg.exit_code, 0) << svg.err;
  const std::string text = read_text(path("stress.svg"));
  EXPECT_THAT(text, HasSubstr("Stress test"));
  EXPECT_THAT(text, HasSubstr("RSS (MiB)"));
}

TEST_F(PlotTest, ABenchResultBecomesARoofline) {
  write_text(path("bench.json"), bench_result().dump());
  const auto svg = plot(path("bench.json").string() + " -o " + path("roofline.svg").string());
  ASSERT_EQ(svg.exit_code, 0) << svg.err;
  const std::string text = read_text(path("roofline.svg"));
  EXPECT_THAT(text, HasSubstr("arithmetic intensity"));
  EXPECT_THAT(text, HasSubstr("decode, batch 32"));
  EXPECT_THAT(text, HasSubstr("prefill, 512 tokens"));
  EXPECT_THAT(text, HasSubstr("29.0 GB/s read bandwidth"));
  // 2.4 GOP per token over 0.0016 s at the peaks: the mode's ceiling is 1500 GOP/s.
  EXPECT_THAT(text, HasSubstr("1500 GOP/s this mode's peak"));
  const auto png = plot(path("bench.json").string() + " --output " + path("roofline.png").string());
  ASSERT_EQ(png.exit_code, 0) << png.err;
}

TEST_F(PlotTest, BadInputsAreOneLineErrors) {
  write_text(path("bench.json"), bench_result().dump());
  write_text(path("not.json"), "{ nope");
  write_text(path("other.json"), R"({"hello": 1})");
  json no_batches = bench_result();
  no_batches.erase("batches");
  no_batches["decode"] = 1;  // still not a demo report: it lacks iterations
  write_text(path("no-batches.json"), no_batches.dump());
  json bad_number = bench_result();
  bad_number["read_bandwidth_gb_per_s"] = "fast";
  write_text(path("bad-number.json"), bad_number.dump());
  struct Case {
    std::string args, needle;
  } cases[] = {
      {path("missing.json").string() + " -o " + path("x.png").string(), "cannot read"},
      {path("not.json").string() + " -o " + path("x.png").string(), "not valid JSON"},
      {path("other.json").string() + " -o " + path("x.png").string(), "neither a demo report"},
      {path("no-batches.json").string() + " -o " + path("x.png").string(), "neither a demo report"},
      {path("bad-number.json").string() + " -o " + path("x.png").string(), "is not a number"},
      {path("bench.json").string() + " -o " + path("x.jpg").string(), ".png or .svg"},
      {path("bench.json").string(), "output"},
  };
  for (const Case& c : cases) {
    const auto r = plot(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_LT(r.exit_code, 128) << c.args << " crashed";
    EXPECT_THAT(r.err + r.out, HasSubstr(c.needle)) << c.args;
  }
  EXPECT_FALSE(std::filesystem::exists(path("x.jpg")));
}

}  // namespace
}  // namespace llama3::testing
