// Which image tokens each text position sees (model/cross_attention_context.h): Meta's
// create_vision_mask, position by position.
#include "model/cross_attention_context.h"

#include <gtest/gtest.h>

#include <limits>

namespace llama3::model {
namespace {

// [key_begin, key_end) seen at each position 0..n-1.
std::vector<std::pair<int64_t, int64_t>> seen(const std::vector<int64_t>& positions, const std::vector<int64_t>& tokens,
                                              int64_t n) {
  CrossAttentionContext ctx;
  ctx.visibility = image_visibility(positions, tokens);
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t p = 0; p < n; ++p) {
    const auto v = ctx.at(p);
    out.emplace_back(v.key_begin, v.key_end);
  }
  return out;
}

using Ranges = std::vector<std::pair<int64_t, int64_t>>;

TEST(ImageVisibility, NothingBeforeTheFirstImageThenItToTheEnd) {
  // BOS, text, the image at 2, then text and generated tokens: all see image 0 (10 tokens).
  EXPECT_EQ(seen({2}, {10}, 6), (Ranges{{0, 0}, {0, 0}, {0, 10}, {0, 10}, {0, 10}, {0, 10}}));
}

TEST(ImageVisibility, EachImageUntilTheNextOneTheLastForever) {
  // Images at 1 and 4 (5 and 7 tokens): 1..3 see the first, 4.. the second only.
  EXPECT_EQ(seen({1, 4}, {5, 7}, 7), (Ranges{{0, 0}, {0, 5}, {0, 5}, {0, 5}, {5, 12}, {5, 12}, {5, 12}}));
}

TEST(ImageVisibility, ConsecutiveImagesAreSeenTogether) {
  // Meta: images at 1 and 2 (a run) then text, then a third at 5. Position 1 sees the first only
  // (its own token), 2..4 both, 5.. the third.
  EXPECT_EQ(seen({1, 2, 5}, {3, 4, 6}, 7), (Ranges{{0, 0}, {0, 3}, {0, 7}, {0, 7}, {0, 7}, {7, 13}, {7, 13}}));
}

TEST(ImageVisibility, ARunOfImagesAtTheEndStaysVisible) {
  EXPECT_EQ(seen({0, 1}, {2, 2}, 4), (Ranges{{0, 2}, {0, 4}, {0, 4}, {0, 4}}));
  const auto far = CrossAttentionContext{0, {}, {}, image_visibility(std::vector<int64_t>{0, 1}, std::vector<int64_t>{2, 2})}
                       .at(std::numeric_limits<int32_t>::max());
  EXPECT_EQ(std::make_pair(far.key_begin, far.key_end), std::make_pair(int64_t{0}, int64_t{4}));
}

TEST(ImageVisibility, NoImagesNoVisibility) { EXPECT_EQ(seen({}, {}, 3), (Ranges{{0, 0}, {0, 0}, {0, 0}})); }

TEST(ImageVisibility, RefusesPositionsOutOfOrderOrCountsThatDiffer) {
  EXPECT_THROW(image_visibility(std::vector<int64_t>{3, 1}, std::vector<int64_t>{1, 1}), std::exception);
  EXPECT_THROW(image_visibility(std::vector<int64_t>{1}, std::vector<int64_t>{1, 1}), std::exception);
}

}  // namespace
}  // namespace llama3::model
