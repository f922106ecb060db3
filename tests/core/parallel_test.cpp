#include "core/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace llama3 {
namespace {

std::vector<int> coverage(size_t n, size_t align, bool nested) {
  std::vector<std::atomic<int>> hits(n);
  auto body = [&] {
    parallel_for(n, [&](size_t b, size_t e) {
      EXPECT_EQ(b % align, 0u);
      for (size_t i = b; i < e; ++i) ++hits[i];
    }, align);
  };
  if (nested) {
    parallel_for(2, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) {
        if (i == 0) body();
      }
    });
  } else {
    body();
  }
  std::vector<int> out;
  for (auto& h : hits) out.push_back(h.load());
  return out;
}

TEST(ParallelFor, EveryIndexOnceWithAlignedChunks) {
  const int saved = thread_count();
  set_thread_count(2);
  for (size_t n : {1u, 15u, 16u, 17u, 100u}) {
    EXPECT_EQ(coverage(n, 16, false), std::vector<int>(n, 1)) << n;
  }
  set_thread_count(saved);
}

// Inside another parallel region OpenMP gives a team of one thread; the split must follow the
// team's real size (a split by the asked-for size once left half of a matrix unconverted).
TEST(ParallelFor, NestedCallStillCoversEveryIndex) {
  const int saved = thread_count();
  set_thread_count(2);
  EXPECT_EQ(coverage(100, 16, true), std::vector<int>(100, 1));
  set_thread_count(saved);
}

}  // namespace
}  // namespace llama3
