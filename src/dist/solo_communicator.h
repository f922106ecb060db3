#pragma once
// One rank of a tensor-parallel group computing alone, its collectives moving nothing: what one
// machine of a cluster computes per step, measured on one machine (`llama3 bench --shard R/T`).
// The numbers it produces are not the model's (partial sums are never added up), only its time.
#include "dist/communicator.h"

namespace llama3::dist {

class SoloCommunicator final : public Communicator {
 public:
  SoloCommunicator(int rank, int size);  // throws llama3::Error unless 0 <= rank < size
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(std::span<float>) override {}
  void all_reduce_sum_bf16(std::span<float>) override {}
  // Its own piece in its place, zeros for the others'.
  void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) override;
  void broadcast(std::span<std::byte>, int) override {}
  void barrier(std::chrono::milliseconds) override {}

 private:
  int rank_;
  int size_;
};

}  // namespace llama3::dist
