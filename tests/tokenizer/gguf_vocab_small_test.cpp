// GGUF vocabularies small enough to read: which tokens are special follows the token types;
// pre-tokenizer names; bad arrays, each a clear llama3::Error. Also the byte-level alphabet both
// tokenizer.json and GGUF write tokens in, and what the tokenizer.json loader keeps for GGUF.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_support.h"
#include "tokenizer/byte_level_vocab.h"
#include "tokenizer/tokenizer.h"

namespace llama3::tokenizer {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using Ids = std::vector<int32_t>;
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

TEST(ByteLevel, WritesEveryByteAsOneCharacterOfGpt2sAlphabet) {
  EXPECT_EQ(to_byte_level(" the"), "Ġthe");             // U+0120
  EXPECT_EQ(to_byte_level("\n\t"), "Ċĉ");               // U+010A, U+0109
  EXPECT_EQ(to_byte_level(std::string(1, '\0')), "Ā");  // U+0100: first shifted byte
  EXPECT_EQ(to_byte_level("\x7F"), "ġ");                // U+0121: after the 33 controls
  EXPECT_EQ(to_byte_level("\xAD"), "Ń");                // U+0143: the last one
  EXPECT_EQ(to_byte_level("\xC3\xA9"), "Ã©");           // printable high bytes stay
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(from_byte_level(to_byte_level(all)), all);
}

TEST(ByteLevel, RefusesTextOutsideTheAlphabet) {
  // Characters of the bytes the alphabet shifts (space, tab, 0xA0, 0xAD) are not in it, nor is
  // anything past U+0143; then a truncated and a broken UTF-8 sequence.
  for (const char* text : {"a b", "\t", "\xC2\xA0", "\xC2\xAD", "\xC5\x84", "\xE2\x82\xAC" /* € */,
                           "\xC4", "\xC4\x20"}) {
    EXPECT_EQ(from_byte_level(text), std::nullopt) << text;
  }
  EXPECT_EQ(from_byte_level("\xC5\x83"), "\xAD");  // U+0143 is the last inside
}

// 256 byte tokens, "ab" (256), then <|begin_of_text|> (257) and <|end_of_text|> (258).
OwnedVocabArrays small_vocab() {
  OwnedVocabArrays v;
  v.model = "gpt2";
  v.pre = "llama-bpe";
  for (int b = 0; b < 256; ++b)
    v.tokens.push_back(to_byte_level(std::string(1, static_cast<char>(b))));
  v.tokens.push_back("ab");
  v.token_types.assign(v.tokens.size(), kNormal);
  for (const char* name : {"<|begin_of_text|>", "<|end_of_text|>"}) {
    v.tokens.push_back(name);
    v.token_types.push_back(kControl);
  }
  v.merges = {"a b"};
  v.bos_id = 257;
  v.eos_id = 258;
  return v;
}

// small_vocab() with one more normal token, `text` (257); the specials move to 258 and 259.
OwnedVocabArrays with_normal_token(const std::string& text) {
  OwnedVocabArrays v = small_vocab();
  v.tokens.insert(v.tokens.begin() + 257, text);
  v.token_types.insert(v.token_types.begin() + 257, kNormal);
  v.bos_id = 258;
  v.eos_id = 259;
  return v;
}

void expect_error(const OwnedVocabArrays& v, const std::string& fragment) {
  EXPECT_THAT([&] { Tokenizer::from_vocab(v.view()); }, ThrowsMessage<Error>(HasSubstr(fragment)));
}

// small_vocab() changed by `edit` is refused with an error containing `fragment`.
void expect_error(const std::function<void(OwnedVocabArrays&)>& edit, const std::string& fragment) {
  OwnedVocabArrays v = small_vocab();
  edit(v);
  expect_error(v, fragment);
}

TEST(SmallGgufVocab, LoadsEncodesAndExportsTheSameArrays) {
  OwnedVocabArrays v = small_vocab();
  v.pad_id = 258;
  v.chat_template = "{{ messages }}";
  const Tokenizer tok = Tokenizer::from_vocab(v.view());
  EXPECT_EQ(tok.vocab_size(), 259);
  EXPECT_EQ(tok.encode("abc <|end_of_text|>", true, false, true), (Ids{257, 256, 'c', ' ', 258}));
  EXPECT_EQ(tok.decode(Ids{256, 258}), "ab<|end_of_text|>");
  EXPECT_TRUE(tok.to_vocab() == v);
}

TEST(SmallGgufVocab, SpecialTokensAreTheControlAndUserDefinedOnes) {
  OwnedVocabArrays v = small_vocab();
  v.token_types[257] = kUserDefined;
  const Tokenizer tok = Tokenizer::from_vocab(v.view());
  EXPECT_FALSE(tok.is_special(256));
  EXPECT_TRUE(tok.is_special(257));
  EXPECT_EQ(tok.token_type(256), TokenType::normal);
  EXPECT_EQ(tok.token_type(257), TokenType::user_defined);
  EXPECT_EQ(tok.token_type(258), TokenType::control);
  EXPECT_EQ(tok.to_vocab().token_types, v.token_types);

  // Typed normal, the same names are BPE tokens: then there is no special BOS.
  v.token_types.assign(v.tokens.size(), kNormal);
  expect_error(v, "bos_token_id 257 is '<|begin_of_text|>', a normal token");
  v.bos_id.reset();
  expect_error(v, "GGUF vocabulary: the tokenizer has no special token '<|begin_of_text|>'");
}

TEST(SmallGgufVocab, NormalTokensMustPrecedeSpecialOnes) {
  expect_error([](auto& v) { v.token_types[100] = kControl; },
               "token 101 'e' is normal but follows special token 100 'd'");
}

TEST(SmallGgufVocab, OtherTokenTypesAreRefused) {
  const std::pair<int32_t, const char*> cases[] = {
      {kByte, "type 6 (byte)"}, {kUnknown, "type 2 (unknown)"}, {0, "type 0 (undefined)"}};
  for (const auto& [type, fragment] : cases) {
    expect_error([type = type](auto& v) { v.token_types[258] = type; },
                 std::string("token 258 '<|end_of_text|>' has ") + fragment);
  }
}

TEST(SmallGgufVocab, TokensAndTypesOfDifferentLengths) {
  expect_error([](auto& v) { v.token_types.pop_back(); },
               "tokenizer.ggml.tokens has 259 entries but tokenizer.ggml.token_type has 258");
  expect_error(
      [](auto& v) {
        v.tokens.clear();
        v.token_types.clear();
      },
      "tokenizer.ggml.tokens is empty");
}

TEST(SmallGgufVocab, MergeOfAnUnknownToken) {
  expect_error([](auto& v) { v.merges.push_back("x yz"); },
               "merge 1 ('x' + 'yz') uses a token missing from the vocabulary");
  // A special token is not a BPE token, even when the merged text is one.
  OwnedVocabArrays v = with_normal_token("a<|end_of_text|>");
  v.merges = {"a <|end_of_text|>"};
  expect_error(v, "merge 0 ('a' + '<|end_of_text|>') uses a token missing");
}

TEST(SmallGgufVocab, MergeThatIsNotTwoTokens) {
  for (const char* merge : {"ab", "a  b", " ab", "a b c", "ab "}) {
    expect_error([&](auto& v) { v.merges = {merge}; },
                 fmt::format("tokenizer.ggml.merges[0] '{}' is not two tokens", merge));
  }
}

TEST(SmallGgufVocab, DuplicateTokens) {
  expect_error([](auto& v) { v.tokens[256] = "a"; }, "tokens 97 and 256 are both 'a'");
  // A special token named like a normal one, and two special tokens of one name.
  expect_error([](auto& v) { v.tokens[258] = "ab"; }, "tokens 256 and 258 are both 'ab'");
  expect_error([](auto& v) { v.tokens[258] = "<|begin_of_text|>"; },
               "tokens 257 and 258 are both '<|begin_of_text|>'");
}

TEST(SmallGgufVocab, TokenTextsThatAreNotByteLevelOrEmpty) {
  expect_error([](auto& v) { v.tokens[256] = "a b"; },
               "token 256 'a b' is not byte-level BPE text");
  expect_error([](auto& v) { v.tokens[258] = ""; }, "special token 258 is empty");
}

TEST(SmallGgufVocab, SpecialIdsOutOfRange) {
  expect_error([](auto& v) { v.bos_id = 259; },
               "tokenizer.ggml.bos_token_id 259 is out of range [0, 259)");
  expect_error([](auto& v) { v.bos_id = -1; }, "tokenizer.ggml.bos_token_id -1 is out of range");
  expect_error([](auto& v) { v.eos_id = 1 << 30; },
               "tokenizer.ggml.eos_token_id 1073741824 is out of range");
  expect_error([](auto& v) { v.pad_id = -2; },
               "tokenizer.ggml.padding_token_id -2 is out of range");
}

TEST(SmallGgufVocab, OnlyByteLevelBpeIsSupported) {
  expect_error([](auto& v) { v.model = "llama"; },
               "tokenizer.ggml.model is 'llama' (SentencePiece, Llama 1 and 2); only 'gpt2'");
  expect_error([](auto& v) { v.model = "bert"; }, "tokenizer.ggml.model is 'bert'");
}

TEST(SmallGgufVocab, OnlyPreTokenizersWithLlama3sRegex) {
  OwnedVocabArrays v = small_vocab();
  for (const char* pre : {"llama-bpe", "llama3", "llama-v3", "smaug-bpe", "falcon3"}) {
    v.pre = pre;
    EXPECT_NO_THROW(Tokenizer::from_vocab(v.view())) << pre;
  }
  expect_error([](auto& v) { v.pre = "qwen2"; },
               "tokenizer.ggml.pre 'qwen2' is not a pre-tokenizer with Llama 3's regex "
               "(supported: llama-bpe, llama3");
  expect_error([](auto& v) { v.pre = "default"; },
               "tokenizer.ggml.pre 'default' is not a pre-tokenizer with Llama 3's regex "
               "(llama.cpp's 'default' is GPT-2's)");
  expect_error([](auto& v) { v.pre = ""; }, "no tokenizer.ggml.pre");
}

// llama.cpp looks a whole piece up before merging for Llama 3 ("ignore_merges"), but not for
// smaug-bpe: a token no merge makes is then out of reach.
TEST(SmallGgufVocab, SmaugBpeMergesEvenWholeTokens) {
  OwnedVocabArrays v = with_normal_token("xyz");
  EXPECT_EQ(Tokenizer::from_vocab(v.view()).encode("xyz", false, false), (Ids{257}));
  v.pre = "smaug-bpe";
  const Tokenizer smaug = Tokenizer::from_vocab(v.view());
  EXPECT_EQ(smaug.encode("xyz", false, false), (Ids{'x', 'y', 'z'}));
  EXPECT_EQ(smaug.to_vocab().pre, "smaug-bpe");
}

TEST(SmallGgufVocab, WithoutEndOfTextEncodeAppendsTheDeclaredEos) {
  OwnedVocabArrays v = small_vocab();
  v.tokens[258] = "<|eot_id|>";
  const Tokenizer tok = Tokenizer::from_vocab(v.view());
  EXPECT_EQ(tok.eos_id(), 258);
  EXPECT_EQ(tok.encode("a", false, true), (Ids{'a', 258}));
}

// The tokenizer.json loader keeps what llama.cpp's converter would write: token types from the
// "special" flag or a special-looking name, tokenizer_config.json's eos and pad tokens and chat
// template (a string, or the "default" entry of a list).
TEST(TokenizerJsonForGguf, KeepsTypesEosPadAndChatTemplate) {
  testing::TempDir dir("gguf-vocab-json");
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[to_byte_level(std::string(1, static_cast<char>(b)))] = b;
  const nlohmann::json root = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
      {"pre_tokenizer",
       {{"type", "Split"},
        {"pattern",
         {{"Regex",
           "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
           "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}}}},
      {"added_tokens",
       {{{"id", 256}, {"content", "<|begin_of_text|>"}, {"special", true}},
        {{"id", 257}, {"content", "<|end_of_text|>"}, {"special", false}},
        {{"id", 258}, {"content", "extra"}, {"special", false}},
        {{"id", 259}, {"content", "<pad>"}, {"special", false}}}}};
  testing::write_text(dir / "tokenizer.json", root.dump());
  testing::write_text(dir / "tokenizer_config.json",
                      R"({"eos_token": {"content": "extra"}, "pad_token": "<pad>",
                          "chat_template": [{"name": "tool_use", "template": "T"},
                                            {"name": "default", "template": "D"}]})");
  const Tokenizer tok = Tokenizer::load(dir / "tokenizer.json");
  EXPECT_EQ(tok.token_type(256), TokenType::control);
  EXPECT_EQ(tok.token_type(257), TokenType::control);       // looks special
  EXPECT_EQ(tok.token_type(258), TokenType::user_defined);  // does not
  EXPECT_EQ(tok.token_type(259), TokenType::control);       // "<pad>" is on the converter's list
  EXPECT_EQ(tok.declared_eos_id(), 258);
  EXPECT_EQ(tok.eos_id(), 257);
  EXPECT_EQ(tok.pad_id(), 259);
  EXPECT_EQ(tok.chat_template(), "D");
  const OwnedVocabArrays out = tok.to_vocab();
  std::vector<int32_t> types(256, kNormal);
  types.insert(types.end(), {kControl, kControl, kUserDefined, kControl});
  EXPECT_EQ(out.token_types, types);
  EXPECT_EQ(out.eos_id, 258);
  EXPECT_EQ(out.pad_id, 259);
}

}  // namespace
}  // namespace llama3::tokenizer
