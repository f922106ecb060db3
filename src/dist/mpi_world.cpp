#include "dist/mpi_world.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/error.h"

#if LLAMA3_HAVE_MPI
#include "dist/mpi_communicator.h"
#include "dist/mpi_error.h"
#endif

namespace llama3::dist {

// Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; PMI-based launchers (MPICH's hydra, srun) set
// PMI_SIZE, and PMIx-based ones (srun --mpi=pmix, prrte) PMIX_RANK.
bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr ||
         std::getenv("PMIX_RANK") != nullptr;
}

#if LLAMA3_HAVE_MPI

MpiWorld::MpiWorld() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  check(!finalized, "MPI was finalized earlier in this process and cannot start again");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // No argc/argv: mpirun passes everything MPI needs through the environment. Until
    // MPI_ERRORS_RETURN is set below, an MPI error here aborts the process (MPI's default).
    // SERIALIZED: one thread at a time calls MPI, but not always the same one: rank 0 opens
    // the model on the main thread and the engine's scheduler thread runs the passes.
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    initialized_here_ = true;
    if (provided < MPI_THREAD_SERIALIZED) {
      MPI_Finalize();
      fail("MPI provides thread level {}; llama3 needs MPI_THREAD_SERIALIZED ({}): the engine's scheduler "
           "thread runs the collectives of a model the main thread opened",
           provided, MPI_THREAD_SERIALIZED);
    }
  }
  try {
    check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  } catch (...) {
    if (initialized_here_) MPI_Finalize();  // the destructor will not run
    throw;
  }
}

MpiWorld::~MpiWorld() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (initialized_here_ && !finalized) MPI_Finalize();
}

std::string MpiWorld::processor_name() const {
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  check_mpi(MPI_Get_processor_name(name, &length), "MPI_Get_processor_name");
  return std::string(name, static_cast<size_t>(length));
}

namespace {

// MPI_Comm_split of the world (a collective call of every rank), wrapped as a Communicator; null
// for a rank whose color is MPI_UNDEFINED.
std::unique_ptr<Communicator> split_world(int color, int key, MpiLimits limits) {
  MPI_Comm comm = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(MPI_COMM_WORLD, color, key, &comm), "MPI_Comm_split");
  if (comm == MPI_COMM_NULL) return nullptr;
  const int set = MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);  // inherited; explicit all the same
  if (set != MPI_SUCCESS) {
    MPI_Comm_free(&comm);
    check_mpi(set, "MPI_Comm_set_errhandler");
  }
  try {
    return std::make_unique<MpiCommunicator>(comm, limits);
  } catch (...) {
    MPI_Comm_free(&comm);
    throw;
  }
}

}  // namespace

std::unique_ptr<Communicator> MpiWorld::tensor_group(MeshShape mesh, MpiLimits limits) {
  // The same answer on every rank (the world size is the same), so no rank is left in the split.
  check_world_fits(mesh, size_);
  const MeshPlace place = place_in_mesh(mesh, rank_);
  // Ordered by tensor rank, which is the world order within the group.
  return split_world(place.data_group, place.tensor_rank, limits);
}

std::unique_ptr<Communicator> MpiWorld::group_leaders(MeshShape mesh) {
  check_world_fits(mesh, size_);
  const MeshPlace place = place_in_mesh(mesh, rank_);
  return split_world(place.tensor_rank == 0 ? 0 : MPI_UNDEFINED, place.data_group, MpiLimits{});
}

int MpiWorld::ranks_sharing_my_cpus() {
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof(mine), &mine) != 0) CPU_ZERO(&mine);
  MPI_Comm host = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &host),
            "MPI_Comm_split_type");
  int n = 1;
  std::vector<cpu_set_t> all;
  int gathered = MPI_Comm_size(host, &n);
  if (gathered == MPI_SUCCESS) {
    all.resize(static_cast<size_t>(n));
    gathered = MPI_Allgather(&mine, sizeof(mine), MPI_BYTE, all.data(), sizeof(mine), MPI_BYTE, host);
  }
  MPI_Comm_free(&host);
  check_mpi(gathered, "MPI_Allgather of the ranks' CPU sets");
  int same = 0;
  for (const cpu_set_t& other : all) same += CPU_EQUAL(&other, &mine) ? 1 : 0;
  return std::max(same, 1);
}

void MpiWorld::abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler and odd MPIs
}

#else  // built without MPI: launched_by_mpirun() still works, so a run can say what is missing

namespace {
[[noreturn]] void no_mpi() { fail("this llama3 was built without MPI (install libopenmpi-dev and rebuild)"); }
}  // namespace

MpiWorld::MpiWorld() { no_mpi(); }
MpiWorld::~MpiWorld() = default;
std::string MpiWorld::processor_name() const { no_mpi(); }
std::unique_ptr<Communicator> MpiWorld::tensor_group(MeshShape, MpiLimits) { no_mpi(); }
int MpiWorld::ranks_sharing_my_cpus() { no_mpi(); }
std::unique_ptr<Communicator> MpiWorld::group_leaders(MeshShape) { no_mpi(); }
void MpiWorld::abort(int exit_code) { std::_Exit(exit_code); }

#endif

}  // namespace llama3::dist
