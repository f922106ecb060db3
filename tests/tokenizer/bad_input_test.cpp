// Bad input: invalid UTF-8 in text (replaced by U+FFFD, see docs/TOKENIZER.md), ids out of
// range, missing, truncated or malformed tokenizer files. Always a clear llama3::Error, never a
// crash.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_fixtures.h"
#include "tokenizer/utf8.h"

namespace llama3::tokenizer {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;
const std::string kFffd = "\xEF\xBF\xBD";

// Expects load(path) to throw llama3::Error whose message contains `fragment`.
void expect_load_error(const fs::path& path, const std::string& fragment) {
  try {
    Tokenizer::load(path);
    ADD_FAILURE() << "loading " << path << " succeeded; expected an error with '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(InvalidUtf8, IsReplacedByU_FFFDOnePerMaximalSubpart) {
  const auto& tok = testing::llama3_tokenizer();
  const std::pair<std::string, std::string> cases[] = {
      {"a\xFF" "b", "a" + kFffd + "b"},
      {"\xC3", kFffd},                                  // truncated 2-byte sequence
      {"x\xE2\x82", "x" + kFffd},                       // truncated 3-byte sequence: one U+FFFD
      {"\xC0\xAF", kFffd + kFffd},                      // overlong encoding
      {"\xED\xA0\x80", kFffd + kFffd + kFffd},          // UTF-16 surrogate
      {"\xF4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},  // past U+10FFFF
      {"\xE2\x82" "A", kFffd + "A"},
  };
  for (const auto& [bad, replaced] : cases) {
    EXPECT_EQ(tok.encode(bad, false, false), tok.encode(replaced, false, false))
        << testing::quoted(bad);
    EXPECT_EQ(tok.decode(tok.encode(bad, false, false)), replaced);
  }
}

TEST(InvalidUtf8, DecodeOfIdsThatFormNoCharacterGivesU_FFFD) {
  const auto& tok = testing::llama3_tokenizer();
  EXPECT_EQ(tok.decode(Ids{76460}), kFffd);  // F0 9F 98 alone
  EXPECT_EQ(tok.decode_bytes(Ids{76460}), "\xF0\x9F\x98");
  EXPECT_TRUE(utf8::is_valid(tok.decode(Ids{222, 9906, 76460})));
}

TEST(DecodeIds, OutOfRangeIsAnError) {
  const auto& tok = testing::llama3_tokenizer();
  EXPECT_THROW(tok.decode(Ids{1, 128256}), Error);
  EXPECT_THROW(tok.decode(Ids{-1}), Error);
  EXPECT_THROW(tok.token_name(1 << 30), Error);
  try {
    tok.decode(Ids{999999});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("999999"), std::string::npos) << e.what();
  }
}

class BadTokenizerFile : public ::testing::Test {
 protected:
  testing::TempDir dir{"bad-tokenizer"};
};

TEST_F(BadTokenizerFile, Missing) { expect_load_error(dir / "nope.model", "not found"); }

TEST_F(BadTokenizerFile, EmptyModel) {
  testing::write_text(dir / "tokenizer.model", "");
  expect_load_error(dir / "tokenizer.model", "has 0 ranks");
}

TEST_F(BadTokenizerFile, TiktokenRankLineNotBase64) {
  testing::write_text(dir / "tokenizer.model", "IQ== 0\nnot*base64 1\n");
  expect_load_error(dir / "tokenizer.model", ":2: token 'not*base64' is not valid base64");
}

TEST_F(BadTokenizerFile, TiktokenBadRank) {
  testing::write_text(dir / "tokenizer.model", "IQ== zero\n");
  expect_load_error(dir / "tokenizer.model", "rank 'zero' is not an integer");
  testing::write_text(dir / "tokenizer.model", "IQ== 0\nIg== 0\n");
  expect_load_error(dir / "tokenizer.model", "rank 0 appears twice");
  testing::write_text(dir / "tokenizer.model", "IQ==\n");
  expect_load_error(dir / "tokenizer.model", "expected `base64 rank`");
}

TEST_F(BadTokenizerFile, TiktokenTruncated) {
  testing::write_tiktoken_file(testing::llama3_tokenizer(), dir / "full.model");
  const std::string full = testing::read_text(dir / "full.model");
  // Cut mid-line, and cut exactly at a line end: both are errors.
  testing::write_text(dir / "tokenizer.model", full.substr(0, full.size() / 2 + 3));
  EXPECT_THROW(Tokenizer::load(dir / "tokenizer.model"), Error);
  const size_t line_end = full.rfind('\n', full.size() / 2) + 1;
  testing::write_text(dir / "tokenizer.model", full.substr(0, line_end));
  expect_load_error(dir / "tokenizer.model", "(file truncated?)");
}

TEST_F(BadTokenizerFile, TokenizerJsonTruncatedOrNotJson) {
  const std::string full = testing::read_text(testing::default_tokenizer_path());
  testing::write_text(dir / "tokenizer.json", full.substr(0, full.size() / 3));
  expect_load_error(dir / "tokenizer.json", "invalid JSON");
  testing::write_text(dir / "tokenizer.json", "{\"model\": 1}");
  expect_load_error(dir / "tokenizer.json", "tokenizer.json");
  testing::write_text(dir / "tokenizer.json", "{}");
  expect_load_error(dir / "tokenizer.json", "missing \"model\"");
}

TEST_F(BadTokenizerFile, TokenizerJsonWithAnotherPreTokenizerIsRefused) {
  const std::string json =
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
          "pre_tokenizer": {"type": "ByteLevel"}})";
  testing::write_text(dir / "tokenizer.json", json);
  expect_load_error(dir / "tokenizer.json", "pre_tokenizer is not the Llama 3 split regex");
}

// Small well-formed-looking files with one defect each: the vocabulary of all 256 bytes in
// GPT-2's byte-level alphabet, plus what the case adds.
class SmallTokenizerJson : public BadTokenizerFile {
 protected:
  std::string write(const std::string& extra_vocab, const std::string& merges,
                    const std::string& added = "[]") {
    std::string vocab;
    int shifted = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : shifted++;
      std::string ch;
      if (cp < 0x80) {
        ch = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : std::string(1, static_cast<char>(cp));
      } else {
        ch = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
      }
      vocab += "\"" + ch + "\": " + std::to_string(b) + ", ";
    }
    vocab += extra_vocab;
    if (vocab.ends_with(", ")) vocab.resize(vocab.size() - 2);
    const std::string json = R"({"added_tokens": )" + added +
                             R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": )" +
                             R"("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},)" +
                             R"( "model": {"type": "BPE", "vocab": {)" + vocab +
                             R"(}, "merges": [)" + merges + "]}}";
    testing::write_text(dir / "tokenizer.json", json);
    return json;
  }
  const std::string specials_ =
      R"([{"id": 257, "content": "<|begin_of_text|>"}, {"id": 258, "content": "<|end_of_text|>"}])";
};

TEST_F(SmallTokenizerJson, WellFormedLoadsAndEncodes) {
  write(R"("ab": 256)", R"("a b")", specials_);
  const auto tok = Tokenizer::load(dir / "tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), 259);
  EXPECT_EQ(tok.encode("abc", true, false), (Ids{257, 256, 'c'}));
}

TEST_F(SmallTokenizerJson, MergeOfUnknownToken) {
  write(R"("ab": 256)", R"("a b", "x yz")", specials_);
  expect_load_error(dir / "tokenizer.json", "merge 1 ('x' + 'yz') uses a token missing");
}

TEST_F(SmallTokenizerJson, BadMergeShape) {
  write(R"("ab": 256)", R"("ab")", specials_);
  expect_load_error(dir / "tokenizer.json", "is not two tokens");
}

TEST_F(SmallTokenizerJson, RepeatedOrOutOfRangeId) {
  write(R"("ab": 255)", R"()", specials_);
  expect_load_error(dir / "tokenizer.json", "out of range or repeated");
}

TEST_F(SmallTokenizerJson, SpecialIdsWithAGap) {
  write(R"("ab": 256)", R"()", R"([{"id": 258, "content": "<|begin_of_text|>"}])");
  expect_load_error(dir / "tokenizer.json", "no added token has id 257");
}

TEST_F(SmallTokenizerJson, NoBosToken) {
  write(R"("ab": 256)", R"()", R"([{"id": 257, "content": "<|x|>"}])");
  expect_load_error(dir / "tokenizer.json", "no special token '<|begin_of_text|>'");
}

TEST_F(SmallTokenizerJson, ConfigThatIsNotJson) {
  write(R"("ab": 256)", R"()", specials_);
  testing::write_text(dir / "tokenizer_config.json", "{\"bos_token\": ");
  expect_load_error(dir / "tokenizer.json", "tokenizer_config.json: invalid JSON");
}

TEST_F(SmallTokenizerJson, ConfigNamesTheBos) {
  write(R"("ab": 256)", R"()", specials_);
  testing::write_text(dir / "tokenizer_config.json",
                      R"({"bos_token": {"content": "<|end_of_text|>"}})");
  EXPECT_EQ(Tokenizer::load(dir / "tokenizer.json").bos_id(), 258);
}

TEST(Utf8, FirstInvalidFindsTheOffendingByte) {
  EXPECT_EQ(utf8::first_invalid("plain ascii"), std::string_view::npos);
  EXPECT_EQ(utf8::first_invalid("\xF0\x9F\x98\x80 ok \xC3\xA9"), std::string_view::npos);
  EXPECT_EQ(utf8::first_invalid("ab\x80"), 2u);              // stray continuation byte
  EXPECT_EQ(utf8::first_invalid("a\xC0\xAF"), 1u);           // overlong '/'
  EXPECT_EQ(utf8::first_invalid("a\xE0\x80\xAF"), 1u);       // overlong, 3 bytes
  EXPECT_EQ(utf8::first_invalid("\xED\xA0\x80"), 0u);        // UTF-16 surrogate
  EXPECT_EQ(utf8::first_invalid("\xF4\x90\x80\x80"), 0u);    // above U+10FFFF
  EXPECT_EQ(utf8::first_invalid("xy\xE2\x82"), 2u);          // truncated at the end
  EXPECT_EQ(utf8::first_invalid(std::string_view("a\0b", 3)), std::string_view::npos);
}

}  // namespace
}  // namespace llama3::tokenizer
