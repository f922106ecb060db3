#include "runtime/prefix_block_pool.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace llama3::runtime {
namespace {

std::vector<int32_t> block(int32_t first) { return {first, first + 1, first + 2, first + 3}; }

TEST(PrefixBlockPool, HashDependsOnEveryTokenAndOnTheParent) {
  const auto a = block(10);
  auto b = a;
  b[3] += 1;
  EXPECT_NE(prefix_block_hash(0, a), prefix_block_hash(0, b));
  EXPECT_NE(prefix_block_hash(0, a), prefix_block_hash(1, a));
  EXPECT_EQ(prefix_block_hash(5, a), prefix_block_hash(5, block(10)));
}

TEST(PrefixBlockPool, APublishedBlockIsFoundAfterItsHolderReleasesIt) {
  PrefixBlockPool pool(4, 4);
  const int32_t b = pool.allocate();
  const auto tokens = block(1);
  const uint64_t h = prefix_block_hash(0, tokens);
  pool.publish(b, h, 0, tokens);
  pool.release(std::vector<int32_t>{b});
  EXPECT_EQ(pool.used_blocks(), 0);
  EXPECT_EQ(pool.cached_blocks(), 1);
  EXPECT_EQ(pool.acquire_cached(h, 0, tokens), b);
  EXPECT_EQ(pool.used_blocks(), 1);
  EXPECT_EQ(pool.cached_blocks(), 0);
  EXPECT_EQ(pool.acquire_cached(h, 0, tokens), b) << "a second holder shares it";
  pool.release(std::vector<int32_t>{b, b});
  EXPECT_EQ(pool.cached_blocks(), 1);
}

TEST(PrefixBlockPool, AHashHitWithOtherTokensOrParentIsAMiss) {
  PrefixBlockPool pool(2, 4);
  const int32_t b = pool.allocate();
  const auto tokens = block(1);
  const uint64_t h = prefix_block_hash(0, tokens);
  pool.publish(b, h, 0, tokens);
  EXPECT_EQ(pool.acquire_cached(h, 0, block(2)), -1) << "same hash, other tokens (a collision)";
  EXPECT_EQ(pool.acquire_cached(h, 7, tokens), -1) << "same hash, other parent";
  EXPECT_EQ(pool.acquire_cached(prefix_block_hash(0, block(2)), 0, block(2)), -1);
}

TEST(PrefixBlockPool, FreshBlocksComeFirstThenTheLeastRecentlyUsedCachedOne) {
  PrefixBlockPool pool(3, 4);
  std::vector<int32_t> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(pool.allocate());
    pool.publish(ids.back(), prefix_block_hash(0, block(i * 10)), 0, block(i * 10));
  }
  EXPECT_THROW(pool.allocate(), Error);
  pool.release(std::vector<int32_t>{ids[1]});
  pool.release(std::vector<int32_t>{ids[0]});
  pool.release(std::vector<int32_t>{ids[2]});
  EXPECT_EQ(pool.cached_blocks(), 3);
  EXPECT_EQ(pool.allocate(), ids[1]) << "released first, evicted first";
  EXPECT_EQ(pool.evictions(), 1);
  EXPECT_EQ(pool.acquire_cached(prefix_block_hash(0, block(10)), 0, block(10)), -1) << "its prefix is forgotten";
  EXPECT_EQ(pool.acquire_cached(prefix_block_hash(0, block(0)), 0, block(0)), ids[0]);
  EXPECT_EQ(pool.allocate(), ids[2]);
  EXPECT_EQ(pool.available_blocks(), 0);
}

TEST(PrefixBlockPool, BadReleasesChangeNothing) {
  PrefixBlockPool pool(3, 4);
  const int32_t a = pool.allocate();
  EXPECT_THROW(pool.release(std::vector<int32_t>{a, a}), Error) << "held once, released twice";
  EXPECT_EQ(pool.used_blocks(), 1);
  EXPECT_THROW(pool.release(std::vector<int32_t>{a, 7}), Error);
  EXPECT_EQ(pool.used_blocks(), 1);
  pool.release(std::vector<int32_t>{a});
  EXPECT_THROW(pool.release(std::vector<int32_t>{a}), Error);
  EXPECT_THROW(PrefixBlockPool(0, 4), Error);
  EXPECT_THROW(pool.publish(a, 1, 0, block(0)), Error) << "publishing a block nobody holds";
}

}  // namespace
}  // namespace llama3::runtime
