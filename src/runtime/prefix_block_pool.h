#pragma once
// The KV pool's block ids for the serving engine, with prefix caching (vLLM's automatic prefix
// caching): a full block whose keys and values are computed can be published under the hash of
// every token up to and including it. A later request whose prompt starts with the same tokens
// takes those blocks instead of computing them again. Blocks are reference-counted; a block
// nobody holds keeps its contents and stays findable, in LRU order, until a fresh block is
// needed and it is the oldest such one.
//
// Only full blocks are shared, and a shared block is never written (its positions are all
// computed), so no copy-on-write is needed. A request's last, partial block is its own; when it
// fills up it is published like any other.
// Not thread-safe: the scheduler owns it and calls it from one thread.
#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

namespace llama3::runtime {

// Hash of a block's tokens chained to the hash of everything before it (0 for the first block).
uint64_t prefix_block_hash(uint64_t parent, std::span<const int32_t> tokens);

class PrefixBlockPool {
 public:
  // Throws llama3::Error unless num_blocks >= 1 and block_size >= 1.
  PrefixBlockPool(int32_t num_blocks, int32_t block_size);

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  // Blocks held by at least one sequence.
  int32_t used_blocks() const { return used_; }
  // Blocks held by nobody that still hold a published prefix (reusable, evictable).
  int32_t cached_blocks() const { return static_cast<int32_t>(lru_.size()); }
  // Blocks a sequence could take now (fresh ones and evictable cached ones).
  int32_t available_blocks() const { return num_blocks() - used_; }

  // A fresh block for one holder: an unpublished free block, else the least recently used
  // cached one (its prefix is forgotten). Throws llama3::Error if every block is held.
  int32_t allocate();
  // The published block of `hash` whose own tokens are `tokens` and whose parent hash is
  // `parent`, now held once more; -1 if there is none.
  int32_t acquire_cached(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens);
  // Publishes a held, full block (its K/V computed) under `hash`. A block already published
  // (or a hash already taken by another block) is left as it is.
  void publish(int32_t block, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens);
  // Drops one hold of each block; a block nobody holds becomes cached (if published) or free.
  // Throws llama3::Error, changing nothing, on an id out of range or not held.
  void release(std::span<const int32_t> blocks);

  int64_t evictions() const { return evictions_; }

 private:
  struct Block {
    int32_t refs = 0;
    bool published = false;
    uint64_t hash = 0;
    uint64_t parent = 0;
    std::vector<int32_t> tokens;          // the block's own tokens (checked on a hit)
    std::list<int32_t>::iterator lru_it;  // valid while cached (published, refs 0)
  };
  void unpublish(int32_t block);

  int32_t block_size_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;                     // unpublished, unheld: a stack
  std::list<int32_t> lru_;                        // published, unheld: front is the oldest
  std::unordered_map<uint64_t, int32_t> by_hash_;
  int32_t used_ = 0;
  int64_t evictions_ = 0;
};

}  // namespace llama3::runtime
