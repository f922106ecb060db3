// The demo end to end through the binary, on a tiny model with the real vocabulary (written as a
// Hugging Face folder at test time) and the real tokenizer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "model/checkpoint_writer.h"
#include "model/random_weights.h"
#include "test_support.h"
#include "tiny_model.h"

namespace llama3::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class DemoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new TempDir("demo-model");
    model::ModelConfig c = tiny_config(128256, true, 32.0);  // the real vocabulary: prompts use the real tokenizer
    c.ffn_dim = 192;
    const auto w = model::random_weights(c, 3);
    model::write_hf_folder(c, w, model_dir_->path());
  }
  static void TearDownTestSuite() { delete model_dir_; }

  static CommandResult demo(const std::string& args) {
    return run_command("env -u LLAMA_DIR -u HF_MODEL " + cli() + " demo --model_dir " + model_dir_->path().string() +
                       " " + args);
  }
  static json report(const std::string& args, const std::string& name) {
    TempDir out("demo-report-" + name);
    const auto r = demo(args + " --report " + (out / "r.json").string());
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out.substr(0, 2000);
    return json::parse(read_text(out / "r.json"));
  }

  static TempDir* model_dir_;
};

TempDir* DemoTest::model_dir_ = nullptr;

TEST_F(DemoTest, ReportHasEveryFieldWithPlausibleValues) {
  const json r = report("--batch_size 8 --max_generated_tokens 12", "fields");
  const json& s = r["summary"];
  for (const char* key : {"model", "weights", "layers", "batch_size", "threads", "load_seconds", "ttft_ms",
                          "prefill_tokens_per_s", "decode_tokens_per_s_per_user", "decode_tokens_per_s",
                          "peak_rss_bytes", "kv_blocks_used_peak", "kv_blocks_total", "mode"}) {
    EXPECT_TRUE(s.contains(key)) << key;
  }
  EXPECT_EQ(s["batch_size"], 8);
  EXPECT_EQ(s["layers"], 2);
  EXPECT_GT(s["decode_tokens_per_s_per_user"].get<double>(), 0.0);
  EXPECT_GT(s["peak_rss_bytes"].get<double>(), 1e6);
  EXPECT_GT(s["kv_blocks_used_peak"].get<int>(), 0);
  EXPECT_LE(s["kv_blocks_used_peak"].get<int>(), s["kv_blocks_total"].get<int>());
  ASSERT_EQ(r["users"].size(), 8u);
  for (const auto& u : r["users"]) {
    EXPECT_FALSE(u["prompt"].get<std::string>().empty());
    EXPECT_EQ(u["prompt_tokens"][0], 128000) << "the chat format starts with <|begin_of_text|>";
    EXPECT_NE(u["prompt_tokens"][1], 128000) << "exactly one BOS";
    EXPECT_GE(u["generated_tokens"].size(), 1u);
    EXPECT_LE(u["generated_tokens"].size(), 12u);
    EXPECT_TRUE(u.contains("text"));
    EXPECT_GT(u["ttft_ms"].get<double>(), 0.0);
    EXPECT_THAT(u["stop_reason"].get<std::string>(), ::testing::AnyOf("stop_token", "max_generated_tokens"));
  }
  EXPECT_GE(r["iterations"].size(), 10u);
  for (const auto& it : r["iterations"]) EXPECT_GT(it["ms"].get<double>(), 0.0);
}

TEST_F(DemoTest, PagedEqualsContiguousThroughTheCli) {
  const std::string greedy = " --batch_size 5 --max_generated_tokens 10 --sampling_params '{\"temperature\":0}'";
  const json paged = report(greedy + " --page_params '{\"page_block_size\":16,\"page_max_num_blocks\":100}'", "paged");
  const json contiguous = report(greedy + " --paged_attention false", "contiguous");
  for (size_t u = 0; u < 5; ++u) {
    EXPECT_EQ(paged["users"][u]["generated_tokens"], contiguous["users"][u]["generated_tokens"]) << u;
  }
}

TEST_F(DemoTest, StressRecyclesUsersWithFlatMemory) {
  TempDir dir("stress-prompts");
  write_text(dir / "short.json", R"([{"prompt": "Tell me a story."}, {"prompt": "Why is the sky blue?"}])");
  // Under ASan (10x slower) a quarter of the run: recycling still happens dozens of times.
  const int tokens = kSanitized ? 500 : 2000;
  const json r = report("--stress_test true --batch_size 4 --max_seq_len 64 --max_generated_tokens " +
                            std::to_string(tokens) +
                            " --page_params '{\"page_block_size\":16,\"page_max_num_blocks\":16}' --input_prompts " +
                            (dir / "short.json").string(),
                        "stress");
  const json& s = r["summary"];
  EXPECT_GE(r["iterations"].size(), static_cast<size_t>(tokens * 19 / 20));
  EXPECT_GT(s["recycles"].get<int>(), 4 * tokens / 100) << "each user refills its 64-token context many times";
  EXPECT_LE(s["kv_blocks_used_peak"].get<int>(), 16);
  EXPECT_GT(s["tsu_last_10pct"].get<double>(), 0.0);
  // Every sampled token's logits were checked for NaN/Inf, and every block came back at the end.
  size_t generated = 0;
  for (const json& u : r["users"]) generated += u["generated_tokens"].size();
  EXPECT_EQ(s["logits_checked"].get<size_t>(), generated);
  EXPECT_EQ(s["logits_nonfinite"], 0);
  EXPECT_EQ(s["kv_blocks_used_end"], 0);
  if (kSanitized) return;  // ASan's quarantine holds freed memory: RSS would measure it, not us
  // RSS after the first iteration vs at the end: the KV pool and scratch are reused, so growth
  // over 2,000 iterations stays within allocator noise (8 MiB).
  EXPECT_LT(s["rss_end_bytes"].get<double>() - s["rss_start_bytes"].get<double>(), 8.0 * (1 << 20));
  // The samples over the run (one every 64 iterations) stay within the same noise, and the last
  // is the end figure: measured with the model and the pool still in place, not after teardown.
  const json& samples = r["rss_samples"];
  ASSERT_GE(samples.size(), 30u);
  double lo = 1e300, hi = 0;
  for (const json& x : samples) {
    lo = std::min(lo, x["rss_bytes"].get<double>());
    hi = std::max(hi, x["rss_bytes"].get<double>());
  }
  EXPECT_LT(hi - lo, 8.0 * (1 << 20));
  EXPECT_EQ(samples.back()["rss_bytes"], s["rss_end_bytes"]);
}

// SIGINT or SIGTERM during a run: the users in flight are cancelled, the outputs, summary and
// report cover the run until then, and the exit code is 128 + the signal. Checked for both
// signals, on a stress run that would otherwise go on for minutes.
TEST_F(DemoTest, ASignalStopsTheRunCleanlyWithItsReport) {
  for (const auto& [name, number] : {std::pair<std::string, int>{"INT", 2}, {"TERM", 15}}) {
    SCOPED_TRACE(name);
    TempDir out("demo-signal-" + name);
    write_text(out / "short.json", R"([{"prompt": "Tell me a story."}, {"prompt": "Why is the sky blue?"}])");
    const std::string script =
        "env -u LLAMA_DIR -u HF_MODEL " + cli() + " demo --model_dir " + model_dir_->path().string() +
        " --stress_test true --batch_size 4 --max_seq_len 64 --max_generated_tokens 1000000 --input_prompts " +
        (out / "short.json").string() + " --report " +
        (out / "r.json").string() + " > " + (out / "out.txt").string() + " 2> " + (out / "err.txt").string() +
        " & pid=$!; for i in $(seq 1 600); do grep -q '^Iteration 20:' " + (out / "out.txt").string() +
        " && break; sleep 0.1; done; t0=$(date +%s%N); kill -" + name +
        " $pid; wait $pid; rc=$?; echo $rc $(( ($(date +%s%N) - t0) / 1000000 ))";
    const auto r = run_command(script);
    std::istringstream fields(r.out);
    int exit_code = -1;
    int64_t stop_ms = -1;
    fields >> exit_code >> stop_ms;
    EXPECT_EQ(exit_code, 128 + number) << read_text(out / "err.txt");
    // Rounds here end every few milliseconds; the signal must still be seen at once, not only
    // in a 50 ms pause between completions that a busy run never has (it once took 30 s).
    EXPECT_LT(stop_ms, 10000) << "the run took this long to stop after the signal";
    const std::string stdout_text = read_text(out / "out.txt");
    EXPECT_THAT(stdout_text, HasSubstr("=== Summary ==="));
    EXPECT_THAT(stdout_text, HasSubstr("interrupted               by SIG" + name + ": 4 users cut short"));
    EXPECT_THAT(read_text(out / "err.txt"), HasSubstr("llama3 demo: stopped by SIG" + name));
    const json report = json::parse(read_text(out / "r.json"));
    EXPECT_EQ(report["summary"]["interrupted"], "SIG" + name);
    EXPECT_GE(report["iterations"].size(), 20u);
    for (const json& user : report["users"]) EXPECT_EQ(user["stop_reason"], "interrupted");
  }
}

TEST_F(DemoTest, ContinuousBatchingRefillsSlots) {
  const auto r = demo("--batch_size 4 --repeat_batches 2 --max_generated_tokens 6 --continuous_batching true");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("continuous batching"));
  EXPECT_THAT(r.out, HasSubstr("Iteration 0:"));
  EXPECT_THAT(r.out, HasSubstr("tok/s/user"));
}

// Users end at max_seq_len, so a short prompt generates many tokens and a long one few. Static
// batches of 2 over (short, long, short, long) wait for the short user twice; continuous batching
// runs the second short user beside the first while the long ones pass through: fewer iterations,
// the same greedy tokens for every user.
TEST_F(DemoTest, ContinuousBatchingNeedsFewerIterationsThanStaticBatchesForTheSameText) {
  TempDir dir("mixed-prompts");
  write_text(dir / "mixed.json", R"([{"prompt": "Hi."},
    {"prompt": "Name the planets of the solar system in order from the sun, with one fact about each of them."}])");
  const std::string args = "--batch_size 2 --repeat_batches 2 --instruct false --max_seq_len 40 "
                           "--max_generated_tokens 100 --sampling_params '{\"temperature\":0}' --input_prompts " +
                           (dir / "mixed.json").string();
  const json s = report(args, "static");
  const json c = report(args + " --continuous_batching true", "continuous");
  ASSERT_EQ(s["users"].size(), 4u);
  for (size_t u = 0; u < 4; ++u) {
    EXPECT_EQ(s["users"][u]["generated_tokens"], c["users"][u]["generated_tokens"]) << u;
  }
  const size_t short_tokens = s["users"][0]["generated_tokens"].size();
  const size_t long_tokens = s["users"][1]["generated_tokens"].size();
  ASSERT_GT(short_tokens, long_tokens + 10) << "the prompts must differ enough in length for this test";
  // Static: each batch lasts as long as its short user; continuous: about one short user's run
  // plus one long user's.
  EXPECT_GE(s["iterations"].size(), 2 * (short_tokens - 1));
  EXPECT_LE(c["iterations"].size(), short_tokens + long_tokens + 2);
}

TEST_F(DemoTest, TsuCheckFailsOutsideTheTargets) {
  TempDir dir("tsu");
  write_text(dir / "impossible.json",
             R"([{"model": "custom", "layers": 2, "batch": 2, "optimizations": "performance", "min_tsu": 1e9, "max_tsu": 2e9}])");
  write_text(dir / "loose.json",
             R"([{"model": "custom", "layers": 2, "batch": 2, "optimizations": "performance", "min_tsu": 0.001, "max_tsu": 1e9}])");
  const std::string base = "--batch_size 2 --max_generated_tokens 30 --tsu_check --tsu_targets ";
  EXPECT_EQ(demo(base + (dir / "impossible.json").string()).exit_code, 3);
  EXPECT_EQ(demo(base + (dir / "loose.json").string()).exit_code, 0);
  const auto missing = demo("--batch_size 3 --max_generated_tokens 2 --tsu_check --tsu_targets " + (dir / "loose.json").string());
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("no target"));
}

TEST_F(DemoTest, NoRunnableUserIsAnError) {
  const auto r = demo("--max_seq_len 16 --batch_size 2 --max_generated_tokens 2");  // shipped prompts are ~120 tokens
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("does not fit --max_seq_len 16"));
  EXPECT_THAT(r.err, HasSubstr("no user"));
}

// The pool is sized from --kv_memory (capped at the batch at max_seq_len), --page_params overrides
// it, and a pool too small for one user is refused with both figures before the model loads.
TEST_F(DemoTest, KvPoolIsSizedFromTheMemoryBudget) {
  // 4 users x ceil(300 / 32) blocks: all the batch can use, well under 1 GiB for the tiny model.
  const json capped = report("--batch_size 4 --max_seq_len 300 --max_generated_tokens 2 --kv_memory 1", "capped");
  EXPECT_EQ(capped["summary"]["kv_blocks_total"].get<int>(), 4 * 10);
  EXPECT_THAT(capped["summary"]["kv_pool"].get<std::string>(), HasSubstr("--kv_memory 1 GiB"));
  const json q8 = report("--batch_size 4 --max_seq_len 300 --max_generated_tokens 2 --kv_cache q8", "q8");
  EXPECT_EQ(q8["summary"]["kv_cache"], "q8");
  // head_dim 16: a q8 row is 16 bytes + a 4-byte scale against 32 bytes of bf16.
  EXPECT_EQ(q8["summary"]["kv_cache_bytes"].get<size_t>() * 32, capped["summary"]["kv_cache_bytes"].get<size_t>() * 20);
  const json explicit_pool = report("--batch_size 4 --max_generated_tokens 2 --page_params "
                                    "'{\"page_block_size\":16,\"page_max_num_blocks\":77}'",
                                    "explicit");
  EXPECT_EQ(explicit_pool["summary"]["kv_blocks_total"].get<int>(), 77);

  // The tiny model's KV at 131072 positions: 2 layers x 2 x 2 kv heads x 16 x 2 bytes = 256 B per
  // position, 32 MiB per user; 0.01 GiB holds ~40 blocks of the 4096 needed.
  const auto small = demo("--max_seq_len 131072 --kv_memory 0.01 --max_generated_tokens 2");
  EXPECT_NE(small.exit_code, 0);
  EXPECT_THAT(small.err, HasSubstr("cannot hold one user's --max_seq_len 131072, which needs 4096 blocks"));
  EXPECT_THAT(small.out, ::testing::Not(HasSubstr("Loaded"))) << "refused only after loading the model";
  const auto few = demo("--page_params '{\"page_max_num_blocks\":3}' --max_generated_tokens 2");
  EXPECT_NE(few.exit_code, 0);
  EXPECT_THAT(few.err, HasSubstr("3 blocks of 32 positions"));
}

TEST_F(DemoTest, BadFlagsGiveClearErrors) {
  struct Case {
    std::string args, needle;
  };
  const Case cases[] = {
      {"--batch_size 33", "batch_size"},
      {"--batch_size=0", "batch_size"},
      {"--page_params '{\"page_block_size\":0}'", "page_block_size"},
      {"--page_params 'not json'", "page_params"},
      {"--page_params '{\"blocks\":3}'", "unknown key"},
      {"--sampling_params '{\"temperature\":-1}'", "temperature"},
      {"--sampling_params '{\"tempo\":1}'", "tempo"},
      {"--optimizations fast", "optimizations"},
      {"--FAKE_DEVICE H100", "FAKE_DEVICE"},
      {"--max_seq_len 200000", "max_seq_len"},
      {"--kv_memory 0", "kv_memory"},
      {"--kv_cache q4", "kv_cache"},
      {"--input_prompts /nonexistent.json", "nonexistent.json"},
      {"--no_such_flag 1", "no_such_flag"},
  };
  for (const auto& c : cases) {
    const auto r = demo(c.args + " --max_generated_tokens 2");
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_LT(r.exit_code, 128) << c.args << " crashed";
    EXPECT_THAT(r.err + r.out, HasSubstr(c.needle)) << c.args;
  }
}

}  // namespace
}  // namespace llama3::testing
