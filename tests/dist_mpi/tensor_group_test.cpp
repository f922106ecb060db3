// MpiWorld::tensor_group: groups of consecutive world ranks, collectives inside one group only.
#include <gtest/gtest.h>
#include <sched.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "dist/gather_strings.h"
#include "mpi_test_world.h"

namespace llama3::dist {
namespace {

using testing::mpi_world;

TEST(MpiTensorGroup, TwoByTwoMeshOnFourRanks) {
  if (mpi_world().size() != 4) GTEST_SKIP() << "needs 4 ranks";  // the same on every rank
  const auto group = mpi_world().tensor_group({2, 2});
  const int world_rank = mpi_world().rank();
  EXPECT_EQ(group->size(), 2);
  EXPECT_EQ(group->rank(), world_rank % 2);

  // Each group sums its own ranks only: {0, 1} and {2, 3}.
  std::vector<float> v = {static_cast<float>(world_rank), 1.0f};
  group->all_reduce_sum(v);
  EXPECT_EQ(v[0], world_rank < 2 ? 0.0f + 1.0f : 2.0f + 3.0f);
  EXPECT_EQ(v[1], 2.0f);

  const int mine = world_rank;
  std::vector<int> members(2);
  group->all_gather(std::as_bytes(std::span(&mine, 1)), std::as_writable_bytes(std::span(members)));
  const int first = world_rank / 2 * 2;
  EXPECT_EQ(members, (std::vector<int>{first, first + 1}));
  group->barrier(std::chrono::seconds(30));
}

// Data parallelism only: every rank is its own group of one.
TEST(MpiTensorGroup, GroupsOfOne) {
  const auto group = mpi_world().tensor_group({1, mpi_world().size()});
  EXPECT_EQ(group->size(), 1);
  EXPECT_EQ(group->rank(), 0);
  std::vector<float> v = {5.0f};
  group->all_reduce_sum(v);
  EXPECT_EQ(v[0], 5.0f);
  group->barrier(std::chrono::seconds(30));
}

// Every rank throws (the world size is the same everywhere), so none is left in a split.
TEST(MpiTensorGroup, AMeshThatDoesNotFitTheWorldIsRefused) {
  const int n = mpi_world().size();
  try {
    mpi_world().tensor_group({n + 1, 1});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("mpirun -np {}", n + 1)), std::string::npos) << e.what();
  }
}

// Ranks on one host split its CPUs: the test's ranks all run unbound on this machine
// (--bind-to none), so each may use every CPU and shares them with every other rank.
TEST(MpiTensorGroup, RanksOnOneHostShareItsCpus) {
  cpu_set_t mine;
  CPU_ZERO(&mine);
  ASSERT_EQ(sched_getaffinity(0, sizeof(mine), &mine), 0);
  EXPECT_EQ(mpi_world().ranks_sharing_my_cpus(), mpi_world().size());
  // What a rank bound to its own core would count: itself only.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(mpi_world().rank() % CPU_COUNT(&mine), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  const int alone = mpi_world().ranks_sharing_my_cpus();
  ASSERT_EQ(sched_setaffinity(0, sizeof(mine), &mine), 0);
  // Ranks bound to the same core count each other: with more ranks than CPUs some share.
  const int cpus = CPU_COUNT(&mine);
  const int same_core = (mpi_world().size() - 1 - mpi_world().rank() % cpus) / cpus + 1;
  EXPECT_EQ(alone, same_core);
}

// The leaders of a 2x2 mesh's data-parallel groups (world ranks 0 and 2) exchange strings of
// different lengths; the other ranks are in no leaders' group.
TEST(MpiTensorGroup, GroupLeadersOfATwoByTwoMeshExchangeTheirResults) {
  if (mpi_world().size() != 4) GTEST_SKIP() << "needs 4 ranks";  // the same on every rank
  const auto leaders = mpi_world().group_leaders({2, 2});
  const int world_rank = mpi_world().rank();
  EXPECT_EQ(leaders != nullptr, world_rank % 2 == 0);
  if (leaders) {
    EXPECT_EQ(leaders->size(), 2);
    EXPECT_EQ(leaders->rank(), world_rank / 2);
    const std::vector<std::string> sent = {"group zero", std::string(3000, 'x')};
    const std::vector<std::string> all = all_gather_strings(*leaders, sent[static_cast<size_t>(world_rank / 2)]);
    EXPECT_EQ(all, sent);
    EXPECT_EQ(all_gather_strings(*leaders, ""), (std::vector<std::string>{"", ""}));
  }
  mpi_world().tensor_group({4, 1})->barrier(std::chrono::seconds(30));
}

}  // namespace
}  // namespace llama3::dist
