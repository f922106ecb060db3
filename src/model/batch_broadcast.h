#pragma once
// How a tensor-parallel group's leader (rank 0, which schedules) tells the other ranks what to
// compute: before each forward pass it broadcasts the batch (tokens, positions, block tables),
// and the followers run the same pass on their shards (LlamaModel::follow). The header names the
// leader's KV cache (an id and its shape) so a follower keeps one cache of its kv heads per
// cache of the leader's, created on first use. A stop message ends the followers' loop. Two
// broadcasts per step: a fixed header with the sizes, then the payload.
#include <cstdint>
#include <span>
#include <vector>

#include "dist/communicator.h"
#include "model/llama_model.h"

namespace llama3::model {

// Which of the leader's KV caches a batch runs on, and its shape.
struct CacheShape {
  int64_t id = 0;
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  kernels::KvDType dtype = kernels::KvDType::BF16;
  bool operator==(const CacheShape&) const = default;
};

// A received batch: owns the arrays its items' spans point into.
struct ReceivedBatch {
  CacheShape cache;
  std::vector<BatchItem> items;
  std::vector<int32_t> tokens, block_tables;
  int64_t logit_candidates = 0;  // LlamaModel::set_logit_candidates of the leader's pass
};

// Leader side (rank 0 of `group`).
void broadcast_batch(dist::Communicator& group, const CacheShape& cache, std::span<const BatchItem> batch,
                     int64_t logit_candidates = 0);
void broadcast_stop(dist::Communicator& group);

// Follower side: the next batch into `out`; false when the leader sent stop.
bool receive_batch(dist::Communicator& group, ReceivedBatch& out);

}  // namespace llama3::model
