// A rank that does not come to a barrier: the others get llama3::Error within the timeout, and
// once the late rank arrives the group is in step again (MpiCommunicator::barrier's open barrier).
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/error.h"
#include "mpi_test_world.h"

namespace llama3::dist {
namespace {

using testing::mpi_world;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr int kLateRank = 1;
constexpr auto kShortTimeout = milliseconds(200);
constexpr auto kLongTimeout = milliseconds(20'000);

// Every rank but the late one calls the barrier with a short timeout and must see it fail in
// about that time; only then does the late rank arrive. The "only then" is told by a message
// from each waiting rank (point-to-point, which collectives do not match against); a sleep
// could let a slow rank see the late one arrive and pass the barrier.
void miss_one_barrier(Communicator& group) {
  const int tag = 77;
  if (group.rank() == kLateRank) {
    for (int r = 0; r < group.size(); ++r) {
      if (r == kLateRank) continue;
      int note = 0;
      ASSERT_EQ(MPI_Recv(&note, 1, MPI_INT, r, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), MPI_SUCCESS);
    }
    return;
  }
  const auto start = Clock::now();
  try {
    group.barrier(kShortTimeout);
    ADD_FAILURE() << "the barrier passed without rank " << kLateRank;
  } catch (const Error& e) {
    const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    EXPECT_GE(waited, kShortTimeout);
    EXPECT_LT(waited, milliseconds(5'000));
    EXPECT_NE(std::string(e.what()).find("did not reach the barrier within 200 ms"), std::string::npos) << e.what();
  }
  const int note = 1;
  ASSERT_EQ(MPI_Send(&note, 1, MPI_INT, kLateRank, tag, MPI_COMM_WORLD), MPI_SUCCESS);
}

float all_sum_of_ones(Communicator& group) {
  std::vector<float> one = {1.0f};
  group.all_reduce_sum(one);
  return one[0];
}

// The waiting ranks retry the barrier that timed out; the late rank's one call completes it.
TEST(MpiBarrierTimeout, TheOthersFailAndRetryUntilTheLateRankArrives) {
  const auto group = mpi_world().tensor_group({mpi_world().size(), 1});
  miss_one_barrier(*group);
  group->barrier(kLongTimeout);  // the late rank's first barrier, the others' retry
  EXPECT_EQ(all_sum_of_ones(*group), static_cast<float>(group->size()));
  group->barrier(kLongTimeout);
  EXPECT_EQ(all_sum_of_ones(*group), static_cast<float>(group->size()));
}

// The waiting ranks go on to another collective instead of retrying: the late rank's barrier
// still completes the open one, and the next barrier is a new one on every rank.
TEST(MpiBarrierTimeout, OtherCollectivesAfterATimeoutStayInStep) {
  const auto group = mpi_world().tensor_group({mpi_world().size(), 1});
  miss_one_barrier(*group);
  if (group->rank() == kLateRank) group->barrier(kLongTimeout);  // arrives late
  EXPECT_EQ(all_sum_of_ones(*group), static_cast<float>(group->size()));
  group->barrier(kLongTimeout);
  EXPECT_EQ(all_sum_of_ones(*group), static_cast<float>(group->size()));
  group->barrier(kLongTimeout);
}

}  // namespace
}  // namespace llama3::dist
