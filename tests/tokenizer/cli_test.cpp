// `llama3 tokenize` / `llama3 detokenize` through the built binary.
#include <gtest/gtest.h>

#include "test_support.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace llama3::testing {
namespace {

TEST(TokenizeCommand, TextWithAndWithoutBos) {
  auto r = run_command(cli() + " tokenize --text 'Hello world'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[9906,1917]\n");
  r = run_command(cli() + " tokenize --text 'Hello world' --bos");
  EXPECT_EQ(r.out, "[128000,9906,1917]\n");
}

TEST(TokenizeCommand, ChatHasExactlyOneBosEvenWithBosFlag) {
  const auto r = run_command(cli() + " tokenize --chat --bos --system 'You are a helpful assistant.'"
                                     " --text 'What is 2+2?'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "[128000,128006,9125,128007,271,2675,527,264,11190,18328,13,128009,128006,882,128007,"
            "271,3923,374,220,17,10,17,30,128009,128006,78191,128007,271]\n");
}

TEST(TokenizeCommand, SpecialTextIsPlainUnlessAllowed) {
  auto r = run_command(cli() + " tokenize --text '<|eot_id|>'");
  EXPECT_EQ(r.out.find("128009"), std::string::npos) << r.out;
  r = run_command(cli() + " tokenize --allow-special --text '<|eot_id|>'");
  EXPECT_EQ(r.out, "[128009]\n");
}

TEST(TokenizeCommand, FileGivesOneArrayPerLine) {
  TempDir dir("cli-tokenize");
  write_text(dir / "lines.txt", "Hello\n\nworld\r\n");
  const auto r = run_command(cli() + " tokenize --file '" + (dir / "lines.txt").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[9906]\n[]\n[14957]\n");
}

TEST(TokenizeCommand, TokenizerModelOverride) {
  TempDir dir("cli-tokenizer-model");
  write_tiktoken_file(llama3_tokenizer(), dir / "tokenizer.model");
  const auto r = run_command(cli() + " tokenize --allow-special --text '<|python_tag|>' --tokenizer '" +
                             (dir / "tokenizer.model").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[128010]\n");  // a Llama 3.1 name, which tokenizer.model files get
}

TEST(TokenizeCommand, ModelFolderAndEnvironment) {
  TempDir dir("cli-model-dir");
  std::filesystem::create_directories(dir / "original");
  write_tiktoken_file(llama3_tokenizer(), dir / "original" / "tokenizer.model");
  auto r = run_command(cli() + " tokenize --allow-special --text '<|eom_id|>' --model '" +
                       dir.path().string() + "'");
  EXPECT_EQ(r.out, "[128008]\n") << r.err;
  r = run_command("LLAMA3_TOKENIZER='" + (dir / "original" / "tokenizer.model").string() + "' " +
                  cli() + " tokenize --allow-special --text '<|eom_id|>'");
  EXPECT_EQ(r.out, "[128008]\n") << r.err;
}

TEST(TokenizeCommand, MissingTokenizerIsAClearError) {
  auto r = run_command(cli() + " tokenize --text x --tokenizer /nonexistent/tokenizer.json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("tokenizer file not found: /nonexistent/tokenizer.json"), std::string::npos)
      << r.err;
  r = run_command("LLAMA3_TOKENIZER=/nonexistent/t.model " + cli() + " tokenize --text x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("LLAMA3_TOKENIZER"), std::string::npos) << r.err;
}

TEST(DetokenizeCommand, PrintsTheText) {
  auto r = run_command(cli() + " detokenize --tokens '[128000, 9906, 1917]'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "<|begin_of_text|>Hello world\n");
  r = run_command(cli() + " detokenize --tokens '9906 1917'");
  EXPECT_EQ(r.out, "Hello world\n");
}

TEST(DetokenizeCommand, BadIdsAreClearErrors) {
  auto r = run_command(cli() + " detokenize --tokens '[1, 200000]'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("token id 200000 is out of range"), std::string::npos) << r.err;
  r = run_command(cli() + " detokenize --tokens '1, x2'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("'x2' is not a token id"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace llama3::testing
