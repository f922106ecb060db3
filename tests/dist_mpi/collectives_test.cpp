// The collectives of MpiCommunicator on the whole world (2 and 4 ranks under ctest).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "mpi_test_world.h"

namespace llama3::dist {
namespace {

using testing::mpi_world;
using testing::world_group;

// 1 + 2 + ... + size: the sum of every rank's (rank + 1).
float sum_of_rank_numbers(int size) { return static_cast<float>(size * (size + 1) / 2); }

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Every rank's copy of `mine`, in rank order.
std::vector<float> gather_floats(Communicator& group, const std::vector<float>& mine) {
  std::vector<float> all(mine.size() * group.size());
  group.all_gather(std::as_bytes(std::span(mine)), std::as_writable_bytes(std::span(all)));
  return all;
}

TEST(MpiCollectives, WorldGroupIsTheWholeWorld) {
  EXPECT_EQ(world_group().size(), mpi_world().size());
  EXPECT_EQ(world_group().rank(), mpi_world().rank());
  EXPECT_GE(mpi_world().size(), 2) << "run these under mpirun -np 2 or more";
  EXPECT_FALSE(mpi_world().processor_name().empty());
}

// Small integers: every partial sum is exact, whatever order MPI adds in.
void expect_exact_sums(Communicator& group, size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 1000) * static_cast<float>(group.rank() + 1);
  group.all_reduce_sum(v);
  const float s = sum_of_rank_numbers(group.size());
  size_t wrong = 0;
  for (size_t i = 0; i < n; ++i) wrong += v[i] != static_cast<float>(i % 1000) * s;
  EXPECT_EQ(wrong, 0u) << "of " << n;
}

TEST(MpiCollectives, AllReduceSumIsExact) {
  expect_exact_sums(world_group(), 1);
  expect_exact_sums(world_group(), 4099);
  std::vector<float> empty;
  world_group().all_reduce_sum(empty);
}

// The bf16 payload: small integers (exact in bf16, sums too) come out exact; random values come
// within bf16's rounding of the exact sum (each of the size() roundings at most 2^-9 of what it
// rounds, bounded by the sum of magnitudes); and every rank receives the same bits. 1001 values:
// not a multiple of the rank count, so the last slice is padded.
TEST(MpiCollectives, Bf16AllReduceRoundsLikeBf16AndIsTheSameOnEveryRank) {
  Communicator& group = world_group();
  const size_t n = 1001;
  std::vector<float> small(n);
  for (size_t i = 0; i < n; ++i) small[i] = static_cast<float>(i % 7) * static_cast<float>(group.rank() + 1);
  group.all_reduce_sum_bf16(small);
  size_t wrong = 0;
  for (size_t i = 0; i < n; ++i) wrong += small[i] != static_cast<float>(i % 7) * sum_of_rank_numbers(group.size());
  EXPECT_EQ(wrong, 0u);

  std::vector<double> exact(n, 0.0), magnitude(n, 0.0);
  for (int r = 0; r < group.size(); ++r) {
    const std::vector<float> theirs = random_floats(n, 100 + static_cast<unsigned>(r));
    for (size_t i = 0; i < n; ++i) exact[i] += theirs[i], magnitude[i] += std::fabs(theirs[i]);
  }
  std::vector<float> v = random_floats(n, 100 + static_cast<unsigned>(group.rank()));
  group.all_reduce_sum_bf16(v);
  size_t outside = 0;
  for (size_t i = 0; i < n; ++i) {
    const double bound = 2.0 * group.size() * std::ldexp(magnitude[i], -9);
    outside += std::fabs(v[i] - exact[i]) > bound;
  }
  EXPECT_EQ(outside, 0u);
  const std::vector<float> all = gather_floats(group, v);
  for (int r = 1; r < group.size(); ++r) {
    EXPECT_EQ(std::memcmp(all.data(), all.data() + static_cast<size_t>(r) * n, n * sizeof(float)), 0) << "rank " << r;
  }
}

TEST(MpiCollectives, AllReduceOfALargeBuffer) { expect_exact_sums(world_group(), 5'000'000); }

// The contract the forward pass relies on: the same bits on every rank, and again on a repeat.
TEST(MpiCollectives, AllReduceGivesEveryRankTheSameBits) {
  Communicator& group = world_group();
  for (size_t n : {size_t{7}, size_t{1000}, size_t{1'000'000}}) {
    const std::vector<float> input = random_floats(n, 1234u + static_cast<unsigned>(group.rank()));
    std::vector<float> once = input;
    group.all_reduce_sum(once);
    std::vector<float> twice = input;
    group.all_reduce_sum(twice);
    EXPECT_EQ(std::memcmp(once.data(), twice.data(), n * sizeof(float)), 0) << n << " floats, repeated";
    const std::vector<float> all = gather_floats(group, once);
    for (int r = 0; r < group.size(); ++r) {
      EXPECT_EQ(std::memcmp(all.data() + r * n, once.data(), n * sizeof(float)), 0)
          << n << " floats: rank " << r << " differs from rank " << group.rank();
    }
  }
}

TEST(MpiCollectives, AllGatherConcatenatesInRankOrder) {
  Communicator& group = world_group();
  for (size_t n : {size_t{0}, size_t{1}, size_t{13}, size_t{100'003}}) {
    std::vector<std::byte> mine(n);
    for (size_t i = 0; i < n; ++i) mine[i] = static_cast<std::byte>((group.rank() * 31 + i) & 0xff);
    std::vector<std::byte> all(n * group.size());
    group.all_gather(mine, all);
    size_t wrong = 0;
    for (int r = 0; r < group.size(); ++r) {
      for (size_t i = 0; i < n; ++i) wrong += all[r * n + i] != static_cast<std::byte>((r * 31 + i) & 0xff);
    }
    EXPECT_EQ(wrong, 0u) << n << " bytes per rank";
  }
}

TEST(MpiCollectives, AllGatherRefusesAMismatchedOutput) {
  std::vector<std::byte> mine(4), all(4 * world_group().size() + 1);
  EXPECT_THROW(world_group().all_gather(mine, all), Error);  // checked before any MPI call
}

TEST(MpiCollectives, BroadcastFromTheLastRank) {
  Communicator& group = world_group();
  const int root = group.size() - 1;
  std::vector<std::byte> data(10'007);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<std::byte>(group.rank() == root ? (i * 7 + 3) & 0xff : 0);
  }
  group.broadcast(data, root);
  size_t wrong = 0;
  for (size_t i = 0; i < data.size(); ++i) wrong += data[i] != static_cast<std::byte>((i * 7 + 3) & 0xff);
  EXPECT_EQ(wrong, 0u);
  std::vector<std::byte> one(1);
  EXPECT_THROW(group.broadcast(one, group.size()), Error);  // checked before any MPI call
}

TEST(MpiCollectives, BarrierPasses) {
  for (int i = 0; i < 3; ++i) world_group().barrier(std::chrono::seconds(30));
}

// MPI counts are ints: longer buffers go in pieces. A limit of 1000 elements runs that path on
// buffers that are small enough for a test.
TEST(MpiCollectives, BuffersLongerThanOneCallGoInPieces) {
  const auto group = mpi_world().tensor_group({mpi_world().size(), 1}, MpiLimits{1000});
  expect_exact_sums(*group, 2503);

  const size_t n = 2503;  // two whole pieces and a part
  std::vector<std::byte> mine(n);
  for (size_t i = 0; i < n; ++i) mine[i] = static_cast<std::byte>((group->rank() * 57 + i * 3) & 0xff);
  std::vector<std::byte> all(n * group->size());
  group->all_gather(mine, all);
  size_t wrong = 0;
  for (int r = 0; r < group->size(); ++r) {
    for (size_t i = 0; i < n; ++i) wrong += all[r * n + i] != static_cast<std::byte>((r * 57 + i * 3) & 0xff);
  }
  EXPECT_EQ(wrong, 0u);

  std::vector<std::byte> data(n, std::byte{0});
  if (group->rank() == 1) data = mine;
  group->broadcast(data, 1);
  std::vector<std::byte> expected(n);
  for (size_t i = 0; i < n; ++i) expected[i] = static_cast<std::byte>((57 + i * 3) & 0xff);
  EXPECT_EQ(data, expected);
}

}  // namespace
}  // namespace llama3::dist
