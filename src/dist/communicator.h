#pragma once
// The collectives a tensor-parallel forward pass needs, over the ranks of one tensor-parallel
// group: a one-process implementation (local_communicator.h) and an MPI one (mpi_world.h)
// behind this small interface, so the model reads the same on one rank and on a mesh.
#include <chrono>
#include <cstddef>
#include <span>

namespace llama3::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // 0 .. size() - 1 within the group
  virtual int size() const = 0;

  // Element-wise sum over the group's ranks, in place. Every rank receives the same bits, and the
  // same inputs give the same bits on every call (the forward pass relies on both: the residual
  // stream must stay identical on every rank, and a mesh must be reproducible).
  virtual void all_reduce_sum(std::span<float> data) = 0;

  // The same sum with a bf16 payload (half the bytes on the wire): each rank's values are
  // rounded to bf16, each slice is summed (in fp32, rounded to bf16 after each addition) on one
  // rank, and the sums are gathered, so every rank receives the same bits, bf16 values. One rank
  // alone leaves `data` as it is (nothing is sent).
  virtual void all_reduce_sum_bf16(std::span<float> data) = 0;

  // Every rank's `mine` (the same length on every rank) concatenated in rank order into `all`
  // (size() * mine.size() bytes) on every rank.
  virtual void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) = 0;

  // Rank `root`'s bytes into `data` on every rank (the same length on every rank).
  virtual void broadcast(std::span<std::byte> data, int root) = 0;

  // Returns once every rank of the group has called it; throws llama3::Error when that has not
  // happened within `timeout` (a dead or missing rank must not hang the others).
  virtual void barrier(std::chrono::milliseconds timeout) = 0;
};

}  // namespace llama3::dist
