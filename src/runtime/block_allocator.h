#pragma once
// Bookkeeping of the paged KV cache's physical blocks: which block ids are free, and the page
// table of each sequence (logical block i of the sequence -> physical block id). The storage
// itself lives in the model layer (model::KvCache); this class only hands out ids.
// Not thread-safe: the scheduler owns it and calls it from one thread.
#include <cstdint>
#include <vector>

namespace llama3::runtime {

struct PageTable {
  std::vector<int32_t> blocks;  // physical block ids, in sequence order
  // Tokens the table can hold without growing.
  int32_t capacity_tokens(int32_t block_size) const {
    return static_cast<int32_t>(blocks.size()) * block_size;
  }
};

class BlockAllocator {
 public:
  // Throws llama3::Error unless num_blocks >= 1 and block_size >= 1 (and their product, the
  // pool's token capacity, fits int32).
  BlockAllocator(int32_t num_blocks, int32_t block_size);

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return static_cast<int32_t>(in_use_.size()); }
  int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }
  int32_t used_blocks() const { return num_blocks() - free_blocks(); }
  // Most blocks ever in use at once since construction (or the last reset_peak()).
  int32_t peak_used_blocks() const { return peak_used_; }
  void reset_peak() { peak_used_ = used_blocks(); }

  // Blocks `table` must gain to hold new_length tokens (0 if it already can).
  int32_t blocks_needed(const PageTable& table, int32_t new_length) const;
  bool can_grow(const PageTable& table, int32_t new_length) const;
  // Appends blocks so `table` covers new_length tokens (never shrinks it). Throws llama3::Error
  // "out of KV blocks: need N, available M" if the pool is short, leaving table and pool as they
  // were; throws on a negative length.
  void grow(PageTable& table, int32_t new_length);
  // Returns all of the table's blocks to the pool and clears it. Throws llama3::Error, changing
  // nothing, if the table holds an id that is out of range, repeated, or not in use (a table
  // released twice, or one from another allocator).
  void release(PageTable& table);

  // Reorders the free list with a seeded shuffle (the same seed gives the same order on every
  // platform), so that later grows hand out non-contiguous physical blocks. For tests of paged
  // attention; harmless otherwise.
  void shuffle_free_list(uint64_t seed);

 private:
  int32_t block_size_;
  std::vector<int32_t> free_;    // a stack: grow() takes from the back
  std::vector<uint8_t> in_use_;  // per block id
  int32_t peak_used_ = 0;
};

}  // namespace llama3::runtime
