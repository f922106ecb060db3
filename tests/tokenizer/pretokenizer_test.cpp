// The pre-tokenizer's pieces for inputs that exercise each alternative of the Llama 3 regex; the
// expected pieces are worked out by hand from the regex (first alternative that matches wins,
// each alternative greedy with backtracking).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode_tables.h"

namespace llama3::tokenizer {
namespace {

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  PieceScanner scanner(text);
  std::string_view piece;
  while (scanner.next(piece)) out.emplace_back(piece);
  return out;
}

using P = std::vector<std::string>;

TEST(PreTokenizer, ContractionsAreCaseInsensitiveAndComeFirst) {
  EXPECT_EQ(pieces("WE'LL we'Re I'M"), (P{"WE", "'LL", " we", "'Re", " I", "'M"}));
  EXPECT_EQ(pieces("'sup"), (P{"'s", "up"}));
  EXPECT_EQ(pieces("'x"), (P{"'x"}));  // not a contraction: punctuation + letters
  EXPECT_EQ(pieces("'l"), (P{"'l"}));  // 'll needs both letters
  EXPECT_EQ(pieces("it'\xC5\xBF"), (P{"it", "'\xC5\xBF"}));  // U+017F folds to 's'
}

TEST(PreTokenizer, LettersTakeOneLeadingNonLetter) {
  EXPECT_EQ(pieces("Hello world"), (P{"Hello", " world"}));
  EXPECT_EQ(pieces("\tindent"), (P{"\tindent"}));
  EXPECT_EQ(pieces("(abc)"), (P{"(abc", ")"}));
  EXPECT_EQ(pieces("\nword"), (P{"\n", "word"}));  // a newline never prefixes a word
  EXPECT_EQ(pieces("1word"), (P{"1", "word"}));    // nor does a number
  EXPECT_EQ(pieces("e\xCC\x81x"), (P{"e", "\xCC\x81x"}));  // a combining mark is not a letter
}

TEST(PreTokenizer, NumbersGroupByThree) {
  EXPECT_EQ(pieces("1234567"), (P{"123", "456", "7"}));
  EXPECT_EQ(pieces("x 42"), (P{"x", " ", "42"}));
  EXPECT_EQ(pieces("\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4"),  // Arabic-Indic digits are \p{N}
            (P{"\xD9\xA1\xD9\xA2\xD9\xA3", "\xD9\xA4"}));
}

TEST(PreTokenizer, PunctuationRunsTakeOneSpaceAndTrailingNewlines) {
  EXPECT_EQ(pieces("a ...\n\nb"), (P{"a", " ...\n\n", "b"}));
  EXPECT_EQ(pieces("  !!"), (P{" ", " !!"}));
  EXPECT_EQ(pieces("\t!"), (P{"\t", "!"}));  // only a space prefixes punctuation
}

TEST(PreTokenizer, WhiteSpaceRules) {
  EXPECT_EQ(pieces("a  \n\n  b"), (P{"a", "  \n\n", " ", " b"}));
  EXPECT_EQ(pieces("a   b"), (P{"a", "  ", " b"}));
  EXPECT_EQ(pieces("end   "), (P{"end", "   "}));
  EXPECT_EQ(pieces("a \t1"), (P{"a", " ", "\t", "1"}));
  EXPECT_EQ(pieces("\r\n"), (P{"\r\n"}));
  EXPECT_EQ(pieces(" "), (P{" "}));
}

TEST(PreTokenizer, WhiteSpaceIsUnicodeWhiteSpace) {
  // U+0085 NEXT LINE is White_Space: "  \u0085" is one run, then \u0085 prefixes the word.
  EXPECT_EQ(pieces("a  \xC2\x85word"), (P{"a", "  ", "\xC2\x85word"}));
  // U+FEFF is not (JavaScript's \s says it is): it is punctuation here.
  EXPECT_EQ(pieces("a \xEF\xBB\xBFword"), (P{"a", " \xEF\xBB\xBF", "word"}));
  EXPECT_EQ(pieces("a\xE3\x80\x80\xE3\x80\x80" "b"), (P{"a", "\xE3\x80\x80", "\xE3\x80\x80" "b"}));
}

TEST(PreTokenizer, EmptyTextHasNoPieces) { EXPECT_TRUE(pieces("").empty()); }

TEST(UnicodeTables, ClassesOfSampleCodePoints) {
  using namespace unicode;
  EXPECT_TRUE(classify(U'é') & kLetter);
  EXPECT_TRUE(classify(U'中') & kLetter);
  EXPECT_TRUE(classify(0x2167) & kNumber);  // ROMAN NUMERAL EIGHT (Nl)
  EXPECT_TRUE(classify(0xBD) & kNumber);    // VULGAR FRACTION ONE HALF (No)
  EXPECT_TRUE(classify(0x3000) & kWhiteSpace);
  EXPECT_TRUE(classify(0x85) & kWhiteSpace);
  EXPECT_FALSE(classify(0xFEFF) & kWhiteSpace);
  EXPECT_FALSE(classify(0x200B) & kWhiteSpace);
  EXPECT_TRUE(classify(0x1C) & kPySpace);   // Python's isspace() differs here
  EXPECT_FALSE(classify(0x1C) & kWhiteSpace);
  EXPECT_EQ(classify(0x1F600), 0);          // emoji: neither
  EXPECT_EQ(classify(0x110000), 0);
}

}  // namespace
}  // namespace llama3::tokenizer
