// The `llama3` binary on bad input: one line on stderr naming the problem, a non-zero exit,
// never a crash (exit codes >= 128 are signals).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace llama3::testing {
namespace {

using ::testing::HasSubstr;

// Runs the CLI with LLAMA_DIR/HF_MODEL cleared unless the command sets them.
CommandResult llama3(const std::string& args, const std::string& env = "") {
  return run_command("env -u LLAMA_DIR -u HF_MODEL " + env + " " + cli() + " " + args);
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
