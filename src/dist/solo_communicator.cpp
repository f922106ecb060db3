#include "dist/solo_communicator.h"

#include <algorithm>

#include "core/error.h"

namespace llama3::dist {

SoloCommunicator::SoloCommunicator(int rank, int size) : rank_(rank), size_(size) {
  check(size >= 1 && rank >= 0 && rank < size, "rank {} of {} is not a rank", rank, size);
}

void SoloCommunicator::all_gather(std::span<const std::byte> mine, std::span<std::byte> all) {
  check(all.size() == mine.size() * static_cast<size_t>(size_), "all_gather: {} bytes for {} pieces of {}", all.size(),
        size_, mine.size());
  std::fill(all.begin(), all.end(), std::byte{0});
  std::copy(mine.begin(), mine.end(), all.begin() + static_cast<std::ptrdiff_t>(mine.size() * static_cast<size_t>(rank_)));
}

}  // namespace llama3::dist
