#pragma once
// How a tensor-parallel group's leader (rank 0, which schedules) tells the other ranks what to
// compute: before each forward pass it broadcasts the batch (tokens, positions, block tables),
// and the followers run the same pass on their shards (LlamaModel::follow). A stop message ends
// the followers' loop. Two broadcasts per step: a fixed header with the sizes, then the payload.
#include <cstdint>
#include <span>
#include <vector>

#include "dist/communicator.h"
#include "model/llama_model.h"

namespace llama3::model {

// A received batch: owns the arrays its items' spans point into.
struct ReceivedBatch {
  std::vector<BatchItem> items;
  std::vector<int32_t> tokens, block_tables;
};

// Leader side (rank 0 of `group`).
void broadcast_batch(dist::Communicator& group, std::span<const BatchItem> batch);
void broadcast_stop(dist::Communicator& group);

// Follower side: the next batch into `out`; false when the leader sent stop.
bool receive_batch(dist::Communicator& group, ReceivedBatch& out);

}  // namespace llama3::model
