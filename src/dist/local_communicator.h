#pragma once
// The group of one: what a single-process run (no mesh) hands the model, so the tensor-parallel
// code path needs no special case for "no group".
#include "dist/communicator.h"

namespace llama3::dist {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(std::span<float> data) override;              // the sum of one: unchanged
  void all_reduce_sum_bf16(std::span<float>) override {}             // nothing sent
  void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) override;  // a copy
  void broadcast(std::span<std::byte> data, int root) override;     // already everywhere
  void barrier(std::chrono::milliseconds timeout) override;         // nobody to wait for
};

}  // namespace llama3::dist
