// The `llama3` binary on bad input: one line on stderr naming the problem, a non-zero exit,
// never a crash (exit codes >= 128 are signals).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace llama3::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Runs the CLI with LLAMA_DIR/HF_MODEL cleared unless the command sets them.
CommandResult llama3(const std::string& args, const std::string& env = "") {
  return run_command("env -u LLAMA_DIR -u HF_MODEL " + env + " " + cli() + " " + args);
}

// The CLI under a resource limit (`prefix` runs it, e.g. prlimit).
CommandResult llama3_limited(const std::string& env, const std::string& prefix, const std::string& args) {
  return run_command("env -u LLAMA_DIR -u HF_MODEL " + env + " " + prefix + " " + cli() + " " + args);
}

void expect_clean_error(const CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "crashed: " << r.err;
  EXPECT_THAT(r.err, HasSubstr(needle));
}

TEST(Cli, GenerateRandomOneLayerPrintsJson) {
  const auto r = llama3("generate --layers 1 --tokens 128000,2028,374 --max_generated_tokens 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt"], nlohmann::json({128000, 2028, 374}));
  EXPECT_EQ(j["generated"].size(), 3u);
}

TEST(Cli, GenerateBadInputs) {
  expect_clean_error(llama3("generate --layers 1 --tokens 1,128256"), "outside the vocabulary");
  expect_clean_error(llama3("generate --layers 1 --tokens 1,x"), "bad token id");
  expect_clean_error(llama3("generate --layers 17 --tokens 1"), "--layers 17");
  expect_clean_error(llama3("generate --layers 1 --tokens 1 --weights instruct"), "needs a checkpoint");
  expect_clean_error(llama3("generate --tokens 1", "LLAMA_DIR=/nonexistent HF_MODEL=/also-not"), "both LLAMA_DIR");
  expect_clean_error(llama3("generate --tokens 1", "LLAMA_DIR=/nonexistent"), "does not exist");
  expect_clean_error(llama3("generate --tokens 1 --model Llama-9B"), "Llama-9B");
  expect_clean_error(llama3("generate --tokens 1 --bogus_flag 3"), "bogus_flag");
}

// A run the machine cannot hold is refused before loading, with the figures and what would fit,
// not killed by the kernel: the 70B preset (~53 GiB in performance mode) under a 20 GiB limit.
TEST(Cli, ARunThatDoesNotFitIsRefusedBeforeLoading) {
  const auto r = llama3("generate --model Llama-3.1-70B --weights random --tokens 128000 --memory_limit 20");
  expect_clean_error(r, "not enough memory for Llama-3.1-70B, 80 layers, performance mode");
  EXPECT_THAT(r.err, HasSubstr("20.00 GiB are available (--memory_limit 20 GiB)"));
  EXPECT_THAT(r.err, HasSubstr("would fit: --layers "));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");
  // The demo and the server refuse the same way (through the engine).
  expect_clean_error(llama3("demo --model Llama-3.1-70B --weights random --layers 80 --memory_limit 20"),
                     "not enough memory");
  expect_clean_error(llama3("serve --model Llama-3.1-70B --weights random --memory_limit 20"), "not enough memory");
}

// `llama3 plan` and --dry_run print the plan and load nothing; the exit code says whether it fits.
TEST(Cli, PlanAndDryRunPrintThePlanWithoutLoading) {
  const auto plan = llama3("plan --model Llama-3.1-70B --layers 2 --memory_limit 20");
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_THAT(plan.out, HasSubstr("Memory plan for Llama-3.1-70B, 2 layers, performance mode"));
  EXPECT_THAT(plan.out, HasSubstr("GiB  weights"));
  EXPECT_THAT(plan.out, HasSubstr("GiB  KV cache"));
  EXPECT_THAT(plan.out, HasSubstr("GiB  activations"));
  EXPECT_THAT(plan.out, HasSubstr("20.000 GiB  available (--memory_limit 20 GiB)\n  fits\n"));
  const auto over = llama3("plan --model Llama-3.1-70B --memory_limit 20");
  expect_clean_error(over, "not enough memory");
  EXPECT_THAT(over.out, HasSubstr("does not fit; would fit: --layers "));
  for (const char* command : {"demo --dry_run", "generate --dry_run --layers 1 --tokens 1,2,3",
                              "serve --dry_run --layers 1", "bench --dry_run --layers 1",
                              "accuracy --dry_run --layers 1 --tokens 16", "chat --dry_run --layers 1"}) {
    const auto r = llama3(command);
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("Memory plan for Llama-3.2-1B")) << command;
    EXPECT_THAT(r.out, HasSubstr("  fits\n")) << command;
    EXPECT_THAT(r.out, Not(HasSubstr("Loaded"))) << command;
    EXPECT_THAT(r.err, Not(HasSubstr("converting weights"))) << command;
  }
}

// Disk full while writing the weight cache (the file-size limit makes the write fail with EFBIG)
// or a cache folder that cannot be made: a warning, the run completes with its output, and no
// half-written cache is left to be read later.
TEST(Cli, AWeightCacheThatCannotBeWrittenIsAWarningAndLeavesNothingBehind) {
  const TempDir cache("cli-cache-full");
  const std::string run = " generate --layers 1 --tokens 128000,2028 --max_generated_tokens 2";
  const auto full = llama3_limited("LLAMA3_CACHE=" + cache.path().string(), "prlimit --fsize=1000000", run);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  EXPECT_THAT(full.err, HasSubstr("warning: could not write the weight cache"));
  EXPECT_THAT(full.err, HasSubstr("running without it"));
  EXPECT_EQ(nlohmann::json::parse(full.out)["generated"].size(), 2u);
  for (const auto& e : std::filesystem::recursive_directory_iterator(cache.path())) {
    EXPECT_FALSE(e.is_regular_file()) << "left behind: " << e.path();
  }
  // The next run, with room, writes the cache and gets the same tokens.
  const auto roomy = llama3("-q" + run, "LLAMA3_CACHE=" + cache.path().string());
  ASSERT_EQ(roomy.exit_code, 0) << roomy.err;
  EXPECT_EQ(nlohmann::json::parse(roomy.out)["generated"], nlohmann::json::parse(full.out)["generated"]);

  const TempDir blocked("cli-cache-blocked");
  write_text(blocked / "not-a-folder", "x");
  const auto no_folder = llama3(run, "LLAMA3_CACHE=" + (blocked / "not-a-folder").string());
  ASSERT_EQ(no_folder.exit_code, 0) << no_folder.err;
  EXPECT_THAT(no_folder.err, HasSubstr("warning: could not write the weight cache"));
}

TEST(Cli, UnknownFlagListsWhatIsAccepted) {
  const auto r = llama3("demo --batch_sise 8");
  expect_clean_error(r, "batch_sise");
  EXPECT_THAT(r.err, HasSubstr("--batch_size"));  // followed by the demo's options
  EXPECT_THAT(r.err, HasSubstr("--page_params"));
}

TEST(Cli, QuietIsAcceptedBeforeTheCommandOrAmongItsOptions) {
  for (const char* args : {"--quiet tokenize --text hi", "tokenize --text hi --quiet", "-q tokenize --text hi"}) {
    const auto r = llama3(args);
    EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
    EXPECT_EQ(r.out, "[6151]\n") << args;
  }
}

TEST(Cli, UnknownCommandAndMissingCommand) {
  EXPECT_NE(llama3("frobnicate").exit_code, 0);
  EXPECT_NE(llama3("").exit_code, 0);
}

TEST(Cli, CheckpointFolderErrors) {
  TempDir dir("cli-ckpt");
  expect_clean_error(llama3("generate --tokens 1 --model_dir " + dir.path().string()), "neither params.json");
  write_text(dir / "config.json", "{\"model_type\": \"llama\"}");
  expect_clean_error(llama3("generate --tokens 1 --model_dir " + dir.path().string()), "hidden_size");
  write_text(dir / "params.json", "{\"dim\": 64, \"n_layers\": 1, \"n_heads\": 4, \"vocab_size\": 10}");
  expect_clean_error(llama3("generate --tokens 1 --model_dir " + dir.path().string()), "consolidated");
}

}  // namespace
}  // namespace llama3::testing
