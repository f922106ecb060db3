#include "runtime/prefix_block_pool.h"

#include <algorithm>

#include "core/error.h"
#include "core/splitmix.h"

namespace llama3::runtime {

uint64_t prefix_block_hash(uint64_t parent, std::span<const int32_t> tokens) {
  // splitmix64 finalizer over (parent, tokens...): well mixed in every bit; a hit is also checked
  // against the block's stored tokens and parent hash, so a 64-bit collision cannot serve
  // another prompt's keys.
  uint64_t h = splitmix64(parent ^ 0x6c6c616d61337078ULL);
  for (int32_t t : tokens) h = splitmix64(h ^ static_cast<uint32_t>(t));
  return h;
}

PrefixBlockPool::PrefixBlockPool(int32_t num_blocks, int32_t block_size) : block_size_(block_size) {
  check(num_blocks >= 1 && block_size >= 1, "KV pool needs at least one block of at least one token (got {} x {})",
        num_blocks, block_size);
  blocks_.resize(static_cast<size_t>(num_blocks));
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);  // hands out 0, 1, 2, ...
}

void PrefixBlockPool::unpublish(int32_t block) {
  Block& b = blocks_[static_cast<size_t>(block)];
  if (!b.published) return;
  by_hash_.erase(b.hash);
  b.published = false;
  b.tokens.clear();
}

int32_t PrefixBlockPool::allocate() {
  int32_t id = -1;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    check(!lru_.empty(), "out of KV blocks: all {} are held", num_blocks());
    id = lru_.front();
    lru_.pop_front();
    unpublish(id);
    ++evictions_;
  }
  blocks_[static_cast<size_t>(id)].refs = 1;
  ++used_;
  return id;
}

int32_t PrefixBlockPool::acquire_cached(uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) {
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  Block& b = blocks_[static_cast<size_t>(it->second)];
  if (b.parent != parent || !std::equal(b.tokens.begin(), b.tokens.end(), tokens.begin(), tokens.end())) return -1;
  if (b.refs == 0) {
    lru_.erase(b.lru_it);
    ++used_;
  }
  ++b.refs;
  return it->second;
}

void PrefixBlockPool::publish(int32_t block, uint64_t hash, uint64_t parent, std::span<const int32_t> tokens) {
  check(block >= 0 && block < num_blocks() && blocks_[static_cast<size_t>(block)].refs > 0,
        "publish: block {} is not held", block);
  check(static_cast<int32_t>(tokens.size()) == block_size_, "publish: a block holds {} tokens, not {}", block_size_,
        tokens.size());
  Block& b = blocks_[static_cast<size_t>(block)];
  if (b.published || by_hash_.contains(hash)) return;
  b.published = true;
  b.hash = hash;
  b.parent = parent;
  b.tokens.assign(tokens.begin(), tokens.end());
  by_hash_.emplace(hash, block);
}

void PrefixBlockPool::release(std::span<const int32_t> blocks) {
  // Validate everything first (counting repeats) so a bad list changes nothing.
  std::unordered_map<int32_t, int32_t> drops;
  for (int32_t id : blocks) {
    check(id >= 0 && id < num_blocks(), "release: block id {} is out of range (pool of {})", id, num_blocks());
    const int32_t n = ++drops[id];
    check(n <= blocks_[static_cast<size_t>(id)].refs, "release: block {} is not held (released twice?)", id);
  }
  for (int32_t id : blocks) {
    Block& b = blocks_[static_cast<size_t>(id)];
    if (--b.refs > 0) continue;
    --used_;
    if (b.published) {
      b.lru_it = lru_.insert(lru_.end(), id);
    } else {
      free_.push_back(id);
    }
  }
}

}  // namespace llama3::runtime
