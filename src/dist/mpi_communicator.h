#pragma once
// Internal to dist/ (MpiWorld::tensor_group hands it out as a Communicator): the collectives
// over one MPI communicator. Only for builds with MPI.
#include <mpi.h>

#include <chrono>

#include "dist/communicator.h"
#include "dist/mpi_world.h"

namespace llama3::dist {

class MpiCommunicator final : public Communicator {
 public:
  // Owns `comm` (freed when destroyed, unless MPI is finalized by then); its errors must come
  // back as codes (MPI_ERRORS_RETURN), which become llama3::Error.
  MpiCommunicator(MPI_Comm comm, MpiLimits limits);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(std::span<float> data) override;
  void all_reduce_sum_bf16(std::span<float> data) override;
  void all_gather(std::span<const std::byte> mine, std::span<std::byte> all) override;
  void broadcast(std::span<std::byte> data, int root) override;

  // MPI_Ibarrier polled until the deadline. MPI can neither cancel nor free a pending barrier,
  // so one that timed out stays open on this rank: when barrier() is the next collective called
  // here, it is a retry that waits for that same barrier (a late rank's one call completes it
  // everywhere); after any other collective, the next barrier() first finishes the open one
  // (the late rank has met it by then) and then runs its own.
  void barrier(std::chrono::milliseconds timeout) override;

 private:
  void wait_for_open_barrier(std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds timeout);
  void note_collective() { collective_since_open_barrier_ = open_barrier_ != MPI_REQUEST_NULL; }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  MpiLimits limits_;
  MPI_Request open_barrier_ = MPI_REQUEST_NULL;
  bool collective_since_open_barrier_ = false;
};

}  // namespace llama3::dist
