// The BPE merge loops on a hand-made vocabulary (where the answer is worked out by hand) and
// on the real one (where the two loops must agree on every piece).
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace llama3::tokenizer {
namespace {

std::vector<std::string> byte_tokens() {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  return tokens;
}

std::vector<int32_t> encode(const BpeModel& m, std::string_view piece, bool heap) {
  std::vector<int32_t> out;
  if (heap) {
    m.merge_heap(piece, out);
  } else {
    m.merge_small(piece, out);
  }
  return out;
}

TEST(BpeModel, LowestRankMergesFirstLeftmostAmongEquals) {
  auto tokens = byte_tokens();
  tokens.push_back("ab");   // 256
  tokens.push_back("bc");   // 257
  tokens.push_back("abc");  // 258
  const BpeModel m = BpeModel::from_ranks(tokens);
  for (bool heap : {false, true}) {
    // "ab" (256) outranks "bc" (257); then "ab"+"c" makes "abc".
    EXPECT_EQ(encode(m, "abc", heap), (std::vector<int32_t>{258})) << heap;
    // "abab": both "ab" pairs merge; "abab" is no token.
    EXPECT_EQ(encode(m, "abab", heap), (std::vector<int32_t>{256, 256})) << heap;
    // "bcab": "ab" first (rank 256 < 257) -> b c ab -> "bc" -> bc ab.
    EXPECT_EQ(encode(m, "bcab", heap), (std::vector<int32_t>{257, 256})) << heap;
  }
}

TEST(BpeModel, MergesListOnlyAppliesListedPairs) {
  auto tokens = byte_tokens();
  tokens.push_back("ab");   // 256
  tokens.push_back("abc");  // 257, but no merge makes it from "ab"+"c"
  const std::vector<BpeModel::Merge> merges = {{'a', 'b', 0, 256}};
  const BpeModel m = BpeModel::from_merges(tokens, merges, /*whole_piece_lookup=*/false);
  std::vector<int32_t> out;
  m.encode_piece("abc", out);
  EXPECT_EQ(out, (std::vector<int32_t>{256, 'c'}));
  const BpeModel whole = BpeModel::from_merges(tokens, merges, /*whole_piece_lookup=*/true);
  out.clear();
  whole.encode_piece("abc", out);
  EXPECT_EQ(out, (std::vector<int32_t>{257}));
}

TEST(BpeModel, RejectsVocabularyWithoutEveryByteOrWithDuplicates) {
  auto tokens = byte_tokens();
  tokens.erase(tokens.begin() + 200);
  tokens.push_back("xy");
  EXPECT_THROW(BpeModel::from_ranks(tokens), Error);
  auto dup = byte_tokens();
  dup.push_back("a");
  EXPECT_THROW(BpeModel::from_ranks(dup), Error);
  auto empty = byte_tokens();
  empty.push_back("");
  EXPECT_THROW(BpeModel::from_ranks(empty), Error);
}

// The quadratic loop (short pieces) and the heap (long pieces) make the same choices.
TEST(BpeModel, SmallAndHeapMergeLoopsAgreeOnTheRealVocabulary) {
  const auto& tok = testing::llama3_tokenizer();
  std::vector<std::string> tokens;
  for (int32_t id = 0; id < tok.vocab_size() && !tok.is_special(id); ++id) {
    tokens.emplace_back(tok.token_name(id));
  }
  const BpeModel m = BpeModel::from_ranks(tokens);
  std::mt19937 rng(7);
  const std::string alphabet = "aeiou rstlnmxzq.,0123456789\xC3\xA9\xE4\xB8\xAD";
  for (int i = 0; i < 2000; ++i) {
    std::string piece;
    const int length = 2 + static_cast<int>(rng() % 60);
    for (int k = 0; k < length; ++k) piece += alphabet[rng() % alphabet.size()];
    ASSERT_EQ(encode(m, piece, false), encode(m, piece, true)) << testing::quoted(piece);
  }
}

}  // namespace
}  // namespace llama3::tokenizer
