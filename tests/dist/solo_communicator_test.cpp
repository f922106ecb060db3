#include "dist/solo_communicator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"

namespace llama3::dist {
namespace {

// A rank computing alone keeps its numbers, puts its own piece in its place and zeros in the
// others' (the sizes of a real gather, none of the traffic).
TEST(DistSoloCommunicator, CollectivesMoveNothingButKeepTheirShapes) {
  SoloCommunicator c(2, 4);
  EXPECT_EQ(c.rank(), 2);
  EXPECT_EQ(c.size(), 4);
  std::vector<float> x = {1.5f, -2.0f};
  c.all_reduce_sum(x);
  EXPECT_EQ(x, (std::vector<float>{1.5f, -2.0f}));
  const std::vector<std::byte> mine = {std::byte{7}, std::byte{9}};
  std::vector<std::byte> all(8, std::byte{1});
  c.all_gather(mine, all);
  EXPECT_EQ(all, (std::vector<std::byte>{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{7},
                                         std::byte{9}, std::byte{0}, std::byte{0}}));
  std::vector<std::byte> wrong(7);
  EXPECT_THROW(c.all_gather(mine, wrong), Error);
  EXPECT_THROW(SoloCommunicator(4, 4), Error);
  EXPECT_THROW(SoloCommunicator(0, 0), Error);
}

}  // namespace
}  // namespace llama3::dist
