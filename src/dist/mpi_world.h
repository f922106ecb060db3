#pragma once
// The MPI world of a run started by `mpirun -np N llama3 ...`: initialization and shutdown, the
// communicator of each tensor-parallel group, and taking every rank down when one fails (so no
// rank waits forever on a dead peer). mpi.h stays out of this header: the rest of the engine
// sees only Communicator. A build without MPI still has this class; its constructor says how to
// get MPI.
#include <climits>
#include <cstddef>
#include <memory>
#include <string>

#include "dist/communicator.h"
#include "dist/mesh.h"

namespace llama3::dist {

// Whether this process was started by an MPI launcher (Open MPI's mpirun, or a PMI/PMIx one such
// as srun): decides whether a run sets up MPI at all. Works in builds without MPI.
bool launched_by_mpirun();

// MPI counts are ints: a collective on more elements than this is split into several calls.
// Tests lower it to run the split path on small buffers.
struct MpiLimits {
  std::size_t max_elements_per_call = INT_MAX;
};

class MpiWorld {
 public:
  // MPI_Init_thread (MPI_THREAD_SERIALIZED: any thread, one at a time, calls MPI) unless
  // MPI is already initialized; errors on MPI_COMM_WORLD come back as llama3::Error instead of
  // aborting. Throws llama3::Error when MPI cannot start, was finalized, or was not built in.
  MpiWorld();
  ~MpiWorld();  // MPI_Finalize, when this object initialized MPI
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::string processor_name() const;  // the host this rank runs on (for logs)

  // The communicator of this rank's tensor group (place_in_mesh): a collective call of every
  // world rank. Throws llama3::Error when the world does not fit the mesh (check_world_fits).
  // The communicator may outlive this object; after MPI_Finalize it must not be used.
  std::unique_ptr<Communicator> tensor_group(MeshShape mesh, MpiLimits limits = {});

  // The leaders of `mesh`'s data-parallel groups (tensor rank 0 of each), ordered by group: a
  // collective call of every world rank; null on the ranks that lead no group.
  std::unique_ptr<Communicator> group_leaders(MeshShape mesh);

  // How many ranks of the job run on this host with exactly this rank's set of CPUs (itself
  // included): a collective call of every world rank. Ranks bound to one core each count 1;
  // ranks left unbound (or bound to a whole socket together) count all of them.
  int ranks_sharing_my_cpus();

  // Ends every rank of the job with `exit_code` (MPI_Abort on MPI_COMM_WORLD): how one rank's
  // fatal error stops the others, which may be blocked in a collective waiting for it.
  [[noreturn]] void abort(int exit_code);

 private:
  int rank_ = 0;
  int size_ = 1;
  bool initialized_here_ = false;
};

}  // namespace llama3::dist
