// A job one of whose ranks fails, run by ctest (DistMpi.dead_rank, DistMpi.stuck_rank) to show
// that the whole job ends instead of hanging:
//   exit: rank 1 dies (_exit, no MPI_Finalize) before a barrier; mpirun ends the job, or else
//         rank 0's barrier times out and it aborts the job;
//   hang: rank 1 never comes to the barrier; rank 0's barrier times out and MpiWorld::abort
//         takes rank 1 down with it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string_view>
#include <thread>

#include "core/error.h"
#include "dist/mpi_world.h"

int main(int argc, char** argv) {
  using namespace llama3;
  const std::string_view mode = argc > 1 ? argv[1] : "";
  if (mode != "exit" && mode != "hang") {
    std::fprintf(stderr, "usage: mpirun -np 2 dist_mpi_dead_rank exit|hang\n");
    return 2;
  }
  try {
    dist::MpiWorld world;
    const auto group = world.tensor_group({world.size(), 1});
    if (world.rank() == 1) {
      if (mode == "exit") _exit(3);
      std::this_thread::sleep_for(std::chrono::seconds(50));  // longer than the ctest TIMEOUT
    }
    try {
      group->barrier(std::chrono::seconds(mode == "exit" ? 5 : 1));
    } catch (const Error& e) {
      std::fprintf(stderr, "rank %d gives up: %s\n", world.rank(), e.what());
      world.abort(4);
    }
    std::fprintf(stderr, "rank %d passed a barrier that should have failed\n", world.rank());
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
