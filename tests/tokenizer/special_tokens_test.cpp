// Special tokens: names per file format, plain text by default, ids when allowed, stop ids.
#include <gtest/gtest.h>

#include "core/error.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace llama3::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

TEST(SpecialTokens, UserTextNeverBecomesASpecialIdByDefault) {
  const auto& tok = testing::llama3_tokenizer();
  for (const char* text : {"<|eot_id|>", "a<|begin_of_text|>b", "<|start_header_id|>"}) {
    for (const int32_t id : tok.encode(text, false, false)) {
      EXPECT_FALSE(tok.is_special(id)) << text;
    }
  }
}

TEST(SpecialTokens, AllowedSpecialsBecomeTheirIds) {
  const auto& tok = testing::llama3_tokenizer();
  EXPECT_EQ(tok.encode("<|eot_id|>", false, false, true), (Ids{128009}));
  EXPECT_EQ(tok.encode("<|begin_of_text|>Hello<|end_of_text|>", false, false, true),
            (Ids{128000, 9906, 128001}));
  // Look-alikes that are no token stay text even when specials are allowed.
  EXPECT_EQ(tok.encode("<|eot_id", false, false, true), tok.encode("<|eot_id", false, false));
  EXPECT_EQ(tok.encode("<|EOT_ID|>", false, false, true), tok.encode("<|EOT_ID|>", false, false));
  EXPECT_EQ(tok.encode("<<|eot_id|>>", false, false, true),
            (Ids{tok.encode("<", false, false)[0], 128009, tok.encode(">", false, false)[0]}));
}

TEST(SpecialTokens, BosAndEosFlags) {
  const auto& tok = testing::llama3_tokenizer();
  EXPECT_EQ(tok.encode("Hello", true, false), (Ids{128000, 9906}));
  EXPECT_EQ(tok.encode("Hello", false, true), (Ids{9906, 128001}));
  EXPECT_EQ(tok.encode("", true, true), (Ids{128000, 128001}));
  EXPECT_EQ(tok.bos_id(), 128000);
  EXPECT_EQ(tok.vocab_size(), 128256);
}

TEST(SpecialTokens, StopIdsAreIdsWhateverTheirNames) {
  const auto& tok = testing::llama3_tokenizer();
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    EXPECT_EQ(tok.is_stop(id), id == 128001 || id == 128008 || id == 128009) << id;
  }
  // This tokenizer.json uses Llama 3.0's names, where 128008 is a reserved token.
  EXPECT_EQ(tok.token_name(128008), "<|reserved_special_token_4|>");
}

TEST(SpecialTokens, TokenizerJsonNamesAreTheFilesAndTokenizerModelGetsLlama31Names) {
  const auto& hf = testing::llama3_tokenizer();
  EXPECT_EQ(hf.token_name(128004), "<|reserved_special_token_2|>");
  EXPECT_EQ(hf.token_name(128010), "<|reserved_special_token_5|>");
  testing::TempDir dir("tokenizer-names");
  testing::write_tiktoken_file(hf, dir / "tokenizer.model");
  const auto meta = Tokenizer::load(dir / "tokenizer.model");
  const std::pair<int32_t, const char*> names[] = {
      {128000, "<|begin_of_text|>"}, {128001, "<|end_of_text|>"},
      {128002, "<|reserved_special_token_0|>"}, {128003, "<|reserved_special_token_1|>"},
      {128004, "<|finetune_right_pad_id|>"}, {128005, "<|reserved_special_token_2|>"},
      {128006, "<|start_header_id|>"}, {128007, "<|end_header_id|>"},
      {128008, "<|eom_id|>"}, {128009, "<|eot_id|>"}, {128010, "<|python_tag|>"},
      {128011, "<|reserved_special_token_3|>"}, {128255, "<|reserved_special_token_247|>"}};
  for (const auto& [id, name] : names) EXPECT_EQ(meta.token_name(id), name) << id;
  EXPECT_EQ(meta.encode("<|python_tag|>", false, false, true), (Ids{128010}));
  EXPECT_EQ(meta.special_id("<|eom_id|>"), 128008);
  EXPECT_THROW(meta.special_id("<|nope|>"), Error);
}

TEST(SpecialTokens, DecodeShowsSpecialNames) {
  const auto& tok = testing::llama3_tokenizer();
  EXPECT_EQ(tok.decode(Ids{128000, 9906, 128009}), "<|begin_of_text|>Hello<|eot_id|>");
  EXPECT_EQ(tok.token_name(9906), "Hello");
}

}  // namespace
}  // namespace llama3::tokenizer
