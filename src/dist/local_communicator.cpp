#include "dist/local_communicator.h"

#include <algorithm>

#include "core/error.h"

namespace llama3::dist {

void LocalCommunicator::all_reduce_sum(std::span<float>) {}

void LocalCommunicator::all_gather(std::span<const std::byte> mine, std::span<std::byte> all) {
  check(all.size() == mine.size(), "all_gather: {} bytes to gather into {} bytes (1 rank)", mine.size(), all.size());
  std::copy(mine.begin(), mine.end(), all.begin());
}

// Checked so a caller's wrong root fails here too, not only on a real mesh.
void LocalCommunicator::broadcast(std::span<std::byte>, int root) {
  check(root == 0, "broadcast: root {} is not a rank of a group of 1", root);
}

void LocalCommunicator::barrier(std::chrono::milliseconds) {}

}  // namespace llama3::dist
