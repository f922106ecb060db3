// Very long inputs: Meta's cuts (<= 400k characters, <= 25k-character runs) and linear time.
#include <gtest/gtest.h>

#include <chrono>

#include "tokenizer/long_text_splitter.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace llama3::tokenizer {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(std::string_view text, size_t max_chars, size_t max_run) {
  Pieces out;
  split_long_text(text, [&](std::string_view p) { out.emplace_back(p); }, max_chars, max_run);
  return out;
}

// Small limits make the rules visible (they are Meta's _split_whitespaces_or_nonwhitespaces).
TEST(LongTextSplitter, CutsRunsLongerThanTheLimit) {
  EXPECT_EQ(split("abcdefg", 100, 3), (Pieces{"abc", "def", "g"}));
  EXPECT_EQ(split("ab  cd", 100, 3), (Pieces{"ab  cd"}));
  EXPECT_EQ(split("ab    cd", 100, 3), (Pieces{"ab   ", " cd"}));
  EXPECT_EQ(split("", 100, 3), (Pieces{}));
}

TEST(LongTextSplitter, CutsChunksAndRestartsTheRunCount) {
  EXPECT_EQ(split("aaaaaaa", 4, 3), (Pieces{"aaa", "a", "aaa"}));
  // Characters, not bytes: four two-byte letters per chunk.
  EXPECT_EQ(split("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 4, 10),
            (Pieces{"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", "\xC3\xA9"}));
}

TEST(LongTextSplitter, UsesPythonsIsspace) {
  // U+001C is white space to Python's isspace() (not to Unicode White_Space); U+FEFF is not.
  EXPECT_EQ(split("ab\x1C\x1C\x1C\x1C", 100, 3), (Pieces{"ab\x1C\x1C\x1C", "\x1C"}));
  EXPECT_EQ(split("\xEF\xBB\xBF\xEF\xBB\xBF\xEF\xBB\xBF\xEF\xBB\xBF", 100, 3),
            (Pieces{"\xEF\xBB\xBF\xEF\xBB\xBF\xEF\xBB\xBF", "\xEF\xBB\xBF"}));
}

TEST(LongInput, EncodesTheCutPiecesIndependently) {
  const auto& tok = testing::llama3_tokenizer();
  const std::string run(kMaxConsecutiveChars + 1000, 'x');
  const auto ids = tok.encode(run, false, false);
  auto expected = tok.encode(run.substr(0, kMaxConsecutiveChars), false, false);
  const auto rest = tok.encode(run.substr(kMaxConsecutiveChars), false, false);
  expected.insert(expected.end(), rest.begin(), rest.end());
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(tok.decode(ids), run);
}

TEST(LongInput, CutsAt400kCharacters) {
  const auto& tok = testing::llama3_tokenizer();
  std::string text;
  while (text.size() < kMaxEncodeChars + 5000) text += "lorem ipsum dolor sit amet ";
  const auto ids = tok.encode(text, false, false);
  auto expected = tok.encode(text.substr(0, kMaxEncodeChars), false, false);
  const auto rest = tok.encode(text.substr(kMaxEncodeChars), false, false);
  expected.insert(expected.end(), rest.begin(), rest.end());
  EXPECT_EQ(ids, expected);
}

// A megabyte line of one character must not take quadratic time (BPE over a 25k-character
// piece uses the heap merge). The bound is generous for a loaded 2-core machine: quadratic
// behaviour would take minutes.
TEST(LongInput, OneMegabyteOfOneCharacterIsFast) {
  const auto& tok = testing::llama3_tokenizer();
  for (const std::string unit : {"a", " ", "\xE4\xB8\xAD", "!", "\n"}) {
    std::string text;
    while (text.size() < (1u << 20)) text += unit;
    const auto start = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text, true, false);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, 5.0) << testing::quoted(unit);
    EXPECT_EQ(tok.decode(std::span(ids).subspan(1)), text);
  }
}

}  // namespace
}  // namespace llama3::tokenizer
