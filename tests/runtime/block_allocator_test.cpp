#include "runtime/block_allocator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "core/error.h"
#include "runtime/sampler.h"

namespace llama3::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

// Every block is either free or in exactly one table, and each table is the minimal cover.
void expect_consistent(const BlockAllocator& pool, const std::vector<PageTable>& tables,
                       const std::vector<int32_t>& lengths) {
  std::set<int32_t> seen;
  int32_t in_tables = 0;
  for (size_t t = 0; t < tables.size(); ++t) {
    for (int32_t id : tables[t].blocks) {
      ASSERT_GE(id, 0);
      ASSERT_LT(id, pool.num_blocks());
      ASSERT_TRUE(seen.insert(id).second) << "block " << id << " handed out twice";
    }
    in_tables += static_cast<int32_t>(tables[t].blocks.size());
    const int32_t capacity = tables[t].capacity_tokens(pool.block_size());
    EXPECT_GE(capacity, lengths[t]);
    EXPECT_LT(capacity, lengths[t] + pool.block_size()) << "more blocks than needed";
  }
  EXPECT_EQ(pool.used_blocks(), in_tables);
  EXPECT_EQ(pool.free_blocks() + pool.used_blocks(), pool.num_blocks());
}

TEST(BlockAllocator, HandsOutBlocksInOrderAndAccountsForThem) {
  BlockAllocator pool(10, 16);
  EXPECT_EQ(pool.block_size(), 16);
  EXPECT_EQ(pool.num_blocks(), 10);
  EXPECT_EQ(pool.free_blocks(), 10);
  PageTable a, b;
  pool.grow(a, 1);
  pool.grow(b, 33);  // 3 blocks
  pool.grow(a, 16);  // still 1 block
  EXPECT_EQ(a.blocks, (std::vector<int32_t>{0}));
  EXPECT_EQ(b.blocks, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(a.capacity_tokens(16), 16);
  EXPECT_EQ(pool.used_blocks(), 4);
  EXPECT_EQ(pool.free_blocks(), 6);
  pool.grow(a, 17);
  EXPECT_EQ(a.blocks, (std::vector<int32_t>{0, 4}));
  pool.grow(a, 3);  // never shrinks
  EXPECT_EQ(a.blocks.size(), 2u);
  pool.grow(a, 0);
  EXPECT_EQ(a.blocks.size(), 2u);
  pool.release(a);
  EXPECT_TRUE(a.blocks.empty());
  pool.release(b);
  EXPECT_EQ(pool.free_blocks(), 10);
  EXPECT_EQ(pool.used_blocks(), 0);
}

TEST(BlockAllocator, RandomWorkloadNeverSharesABlock) {
  BlockAllocator pool(200, 8);
  std::vector<PageTable> tables(12);
  std::vector<int32_t> lengths(12, 0);
  Xoshiro256 rng(3);
  for (int step = 0; step < 5000; ++step) {
    const size_t t = rng.next() % tables.size();
    if (rng.next() % 5 == 0) {
      pool.release(tables[t]);
      lengths[t] = 0;
    } else {
      const int32_t length = lengths[t] + static_cast<int32_t>(rng.next() % 40);
      if (pool.can_grow(tables[t], length)) {
        pool.grow(tables[t], length);
        lengths[t] = length;
      } else {
        EXPECT_THROW(pool.grow(tables[t], length), Error);
      }
    }
    expect_consistent(pool, tables, lengths);
    if (HasFatalFailure()) return;
  }
  for (auto& t : tables) pool.release(t);
  EXPECT_EQ(pool.free_blocks(), 200);
}

TEST(BlockAllocator, OutOfBlocksLeavesStateIntact) {
  BlockAllocator pool(4, 10);
  PageTable a, b;
  pool.grow(a, 20);
  pool.grow(b, 5);
  EXPECT_FALSE(pool.can_grow(b, 41));
  EXPECT_TRUE(pool.can_grow(b, 20));
  EXPECT_EQ(pool.blocks_needed(b, 41), 4);
  EXPECT_THAT([&] { pool.grow(b, 41); },
              ThrowsMessage<Error>(HasSubstr("out of KV blocks: need 4, available 1")));
  EXPECT_EQ(b.blocks, (std::vector<int32_t>{2}));
  EXPECT_EQ(a.blocks, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(pool.free_blocks(), 1);
  pool.grow(b, 11);  // the pool still works: the last block
  EXPECT_EQ(b.blocks, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(pool.free_blocks(), 0);
}

TEST(BlockAllocator, TracksPeakUsage) {
  BlockAllocator pool(8, 4);
  PageTable a, b;
  pool.grow(a, 12);  // 3
  pool.grow(b, 8);   // 2
  EXPECT_EQ(pool.peak_used_blocks(), 5);
  pool.release(a);
  EXPECT_EQ(pool.peak_used_blocks(), 5);
  pool.grow(a, 4);
  EXPECT_EQ(pool.peak_used_blocks(), 5);
  pool.grow(a, 20);  // 5 + 2 = 7
  EXPECT_EQ(pool.peak_used_blocks(), 7);
  pool.release(a);
  pool.reset_peak();
  EXPECT_EQ(pool.peak_used_blocks(), 2);
}

TEST(BlockAllocator, RejectsBadTablesWithoutChangingState) {
  BlockAllocator pool(6, 4);
  PageTable a;
  pool.grow(a, 8);  // blocks 0, 1
  PageTable copy = a;
  pool.release(a);
  EXPECT_THAT([&] { pool.release(copy); },
              ThrowsMessage<Error>(HasSubstr("cannot release block 0")));
  EXPECT_EQ(pool.free_blocks(), 6);
  PageTable b;
  pool.grow(b, 12);  // 3 blocks in use
  PageTable repeated{{b.blocks[0], b.blocks[1], b.blocks[0]}};
  EXPECT_THAT([&] { pool.release(repeated); }, ThrowsMessage<Error>(HasSubstr("listed twice")));
  PageTable foreign{{b.blocks[2], 99}};
  EXPECT_THAT([&] { pool.release(foreign); }, ThrowsMessage<Error>(HasSubstr("no such block")));
  EXPECT_EQ(pool.used_blocks(), 3);
  EXPECT_EQ(repeated.blocks.size(), 3u);
  pool.release(b);  // the failed calls left b's blocks marked in use
  EXPECT_EQ(pool.free_blocks(), 6);
}

TEST(BlockAllocator, RejectsBadSizes) {
  EXPECT_THROW(BlockAllocator(0, 16), Error);
  EXPECT_THROW(BlockAllocator(16, 0), Error);
  EXPECT_THROW(BlockAllocator(-1, 16), Error);
  EXPECT_THROW(BlockAllocator(1 << 20, 1 << 12), Error);  // 2^32 tokens
  BlockAllocator pool(2, 2);
  PageTable t;
  EXPECT_THAT([&] { pool.grow(t, -1); }, ThrowsMessage<Error>(HasSubstr("negative")));
}

TEST(BlockAllocator, ShuffledFreeListIsAReproduciblePermutation) {
  const auto take_all = [](uint64_t seed) {
    BlockAllocator pool(64, 1);
    pool.shuffle_free_list(seed);
    PageTable t;
    pool.grow(t, 64);
    return t.blocks;
  };
  const auto a = take_all(1), b = take_all(1), c = take_all(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<int32_t> sorted = a, identity(64);
  std::sort(sorted.begin(), sorted.end());
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(a, identity);  // a shuffle of 64 that leaves them in order: probability 1/64!
  // Non-contiguous: a sequence of several blocks does not get consecutive ids.
  int adjacent = 0;
  for (size_t i = 1; i < a.size(); ++i) adjacent += a[i] == a[i - 1] + 1;
  EXPECT_LT(adjacent, 10);  // ~1 expected for a random permutation
}

}  // namespace
}  // namespace llama3::runtime
