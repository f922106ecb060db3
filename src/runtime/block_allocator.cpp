#include "runtime/block_allocator.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/error.h"

namespace llama3::runtime {

namespace {

// splitmix64: a fixed, portable generator (std::shuffle's result differs between libraries).
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

BlockAllocator::BlockAllocator(int32_t num_blocks, int32_t block_size) : block_size_(block_size) {
  check(num_blocks >= 1, "KV block pool: num_blocks must be >= 1, got {}", num_blocks);
  check(block_size >= 1, "KV block pool: block_size must be >= 1, got {}", block_size);
  check(static_cast<int64_t>(num_blocks) * block_size <= std::numeric_limits<int32_t>::max(),
        "KV block pool: {} blocks of {} tokens exceed 2^31 tokens", num_blocks, block_size);
  in_use_.assign(static_cast<size_t>(num_blocks), 0);
  // Stored in reverse so that, unshuffled, blocks are handed out as 0, 1, 2, ...
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int32_t id = num_blocks; id-- > 0;) free_.push_back(id);
}

int32_t BlockAllocator::blocks_needed(const PageTable& table, int32_t new_length) const {
  check(new_length >= 0, "KV block pool: negative sequence length {}", new_length);
  const int64_t blocks = (static_cast<int64_t>(new_length) + block_size_ - 1) / block_size_;
  const int64_t have = static_cast<int64_t>(table.blocks.size());
  return blocks > have ? static_cast<int32_t>(blocks - have) : 0;
}

bool BlockAllocator::can_grow(const PageTable& table, int32_t new_length) const {
  return blocks_needed(table, new_length) <= free_blocks();
}

void BlockAllocator::grow(PageTable& table, int32_t new_length) {
  const int32_t need = blocks_needed(table, new_length);
  check(need <= free_blocks(), "out of KV blocks: need {}, available {}", need, free_blocks());
  table.blocks.reserve(table.blocks.size() + static_cast<size_t>(need));  // may throw: before
  for (int32_t i = 0; i < need; ++i) {                                     // any state changes
    const int32_t id = free_.back();
    free_.pop_back();
    in_use_[static_cast<size_t>(id)] = 1;
    table.blocks.push_back(id);
  }
  peak_used_ = std::max(peak_used_, used_blocks());
}

void BlockAllocator::release(PageTable& table) {
  // Validate everything first, so a bad table changes nothing. Marks are undone on the way out.
  size_t checked = 0;
  const auto unmark = [&] {
    for (size_t i = 0; i < checked; ++i) in_use_[static_cast<size_t>(table.blocks[i])] = 1;
  };
  for (; checked < table.blocks.size(); ++checked) {
    const int32_t id = table.blocks[checked];
    const bool valid = id >= 0 && id < num_blocks() && in_use_[static_cast<size_t>(id)] == 1;
    if (!valid) {
      unmark();
      fail("KV block pool: cannot release block {} (entry {} of a page table): {}", id, checked,
           id < 0 || id >= num_blocks() ? "no such block"
                                        : "not in use (released twice, or listed twice)");
    }
    in_use_[static_cast<size_t>(id)] = 2;  // "seen in this table": catches repeats
  }
  // free_ was reserved for every block at construction: these push_backs cannot throw.
  // Pushed in reverse so the table's first block is the next handed out: a sequence that is
  // freed and admitted again tends to get its old blocks back in order.
  for (size_t i = table.blocks.size(); i-- > 0;) {
    in_use_[static_cast<size_t>(table.blocks[i])] = 0;
    free_.push_back(table.blocks[i]);
  }
  table.blocks.clear();
}

void BlockAllocator::shuffle_free_list(uint64_t seed) {
  // Fisher-Yates with a bounded draw; the tiny modulo bias is irrelevant for a test shuffle.
  uint64_t state = seed;
  for (size_t i = free_.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(splitmix64(state) % i);
    std::swap(free_[i - 1], free_[j]);
  }
}

}  // namespace llama3::runtime
