#include "dist/local_communicator.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"

namespace llama3::dist {
namespace {

TEST(DistLocalCommunicator, AGroupOfOne) {
  LocalCommunicator group;
  EXPECT_EQ(group.rank(), 0);
  EXPECT_EQ(group.size(), 1);
}

TEST(DistLocalCommunicator, AllReduceLeavesTheDataAsItIs) {
  LocalCommunicator group;
  std::vector<float> v = {1.5f, -2.0f, 3.25f};
  group.all_reduce_sum(v);
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f, 3.25f}));
  std::vector<float> empty;
  group.all_reduce_sum(empty);
}

TEST(DistLocalCommunicator, AllGatherCopies) {
  LocalCommunicator group;
  const std::vector<std::byte> mine = {std::byte{1}, std::byte{2}, std::byte{3}};
  std::vector<std::byte> all(3);
  group.all_gather(mine, all);
  EXPECT_EQ(all, mine);
  std::vector<std::byte> too_long(4);
  EXPECT_THROW(group.all_gather(mine, too_long), Error);
}

TEST(DistLocalCommunicator, BroadcastAndBarrier) {
  LocalCommunicator group;
  std::vector<std::byte> data = {std::byte{7}};
  group.broadcast(data, 0);
  EXPECT_EQ(data[0], std::byte{7});
  EXPECT_THROW(group.broadcast(data, 1), Error);
  group.barrier(std::chrono::milliseconds(0));
}

// The model takes the interface: a single-process run hands it this.
TEST(DistLocalCommunicator, IsACommunicator) {
  LocalCommunicator local;
  Communicator& group = local;
  std::vector<float> v = {4.0f};
  group.all_reduce_sum(v);
  EXPECT_EQ(v[0], 4.0f);
}

}  // namespace
}  // namespace llama3::dist
