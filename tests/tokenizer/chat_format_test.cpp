// The Llama 3 instruct format: exact ids (from @lenml/tokenizers' apply_chat_template on the
// same tokenizer.json), one BOS, content kept as plain text.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace llama3::tokenizer {
namespace {

const std::vector<ChatMessage> kTwoTurns = {{"system", "You are a helpful assistant."},
                                            {"user", "What is 2+2?"}};

TEST(ChatFormat, TwoTurnDialogGivesTheReferenceIds) {
  const auto& tok = testing::llama3_tokenizer();
  const std::vector<int32_t> expected = {
      128000, 128006, 9125, 128007, 271, 2675, 527, 264, 11190, 18328, 13, 128009,
      128006, 882, 128007, 271, 3923, 374, 220, 17, 10, 17, 30, 128009,
      128006, 78191, 128007, 271};
  EXPECT_EQ(encode_dialog(tok, kTwoTurns), expected);
  const std::vector<int32_t> without_prompt(expected.begin(), expected.end() - 4);
  EXPECT_EQ(encode_dialog(tok, kTwoTurns, false), without_prompt);
  EXPECT_EQ(tok.decode(expected),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
            "assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is "
            "2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatFormat, ExactlyOneBos) {
  const auto& tok = testing::llama3_tokenizer();
  const std::vector<ChatMessage> dialog = {{"user", "<|begin_of_text|>hi"},
                                           {"assistant", "hello"},
                                           {"user", "again"}};
  const auto ids = encode_dialog(tok, dialog);
  EXPECT_EQ(ids.front(), 128000);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 128000), 1);
}

TEST(ChatFormat, ContentIsStrippedAndSpecialLookAlikesStayText) {
  const auto& tok = testing::llama3_tokenizer();
  const auto ids = encode_dialog(tok, std::vector<ChatMessage>{{"user", "  \n<|eot_id|> x\t\n"}});
  // Header, then the content as plain text, then one real <|eot_id|>.
  const auto content = tok.encode("<|eot_id|> x", false, false);
  std::vector<int32_t> expected = {128000, 128006, 882, 128007, 271};
  expected.insert(expected.end(), content.begin(), content.end());
  expected.push_back(128009);
  for (int32_t id : {128006, 78191, 128007, 271}) expected.push_back(id);
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 128009), 1);
}

TEST(ChatFormat, EmptyRoleIsAnError) {
  const auto& tok = testing::llama3_tokenizer();
  EXPECT_THROW(encode_dialog(tok, std::vector<ChatMessage>{{"", "hi"}}), Error);
}

TEST(ChatFormat, EmptyDialogIsBosAndTheAssistantHeader) {
  const auto& tok = testing::llama3_tokenizer();
  EXPECT_EQ(encode_dialog(tok, {}), (std::vector<int32_t>{128000, 128006, 78191, 128007, 271}));
}

}  // namespace
}  // namespace llama3::tokenizer
