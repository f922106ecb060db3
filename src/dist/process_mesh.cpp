#include "dist/process_mesh.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/error.h"
#include "dist/local_communicator.h"
#include "dist/mpi_world.h"

namespace llama3::dist {
namespace {

struct ProcessMesh {
  std::mutex mu;
  std::unique_ptr<MpiWorld> world;  // set on first use inside an MPI job
  std::unique_ptr<Communicator> world_group;
  std::map<std::string, std::unique_ptr<Communicator>> groups;  // by mesh name
  MeshShape job_mesh;
  std::unique_ptr<Communicator> leaders;  // of job_mesh's groups; null on other ranks
  LocalCommunicator local;
};

ProcessMesh& state() {
  static ProcessMesh s;
  return s;
}

// Under the lock: the MPI world, initialized once.
MpiWorld& mpi(ProcessMesh& s) {
  if (!s.world) s.world = std::make_unique<MpiWorld>();
  return *s.world;
}

}  // namespace

bool in_mpi_job() { return launched_by_mpirun() && world_size() > 1; }

int world_rank() {
  if (!launched_by_mpirun()) return 0;
  ProcessMesh& s = state();
  const std::lock_guard lock(s.mu);
  return mpi(s).rank();
}

int world_size() {
  if (!launched_by_mpirun()) return 1;
  ProcessMesh& s = state();
  const std::lock_guard lock(s.mu);
  return mpi(s).size();
}

Communicator& world() {
  ProcessMesh& s = state();
  if (!launched_by_mpirun()) return s.local;
  const std::lock_guard lock(s.mu);
  MpiWorld& w = mpi(s);
  if (!s.world_group) s.world_group = w.tensor_group(MeshShape{w.size(), 1});
  return *s.world_group;
}

Communicator& tensor_group(MeshShape mesh) {
  ProcessMesh& s = state();
  if (!launched_by_mpirun()) {
    check_world_fits(mesh, 1);
    return s.local;
  }
  const std::lock_guard lock(s.mu);
  auto& group = s.groups[mesh.name()];
  if (!group) group = mpi(s).tensor_group(mesh);
  return *group;
}

void set_job_mesh(MeshShape mesh) {
  ProcessMesh& s = state();
  const std::lock_guard lock(s.mu);
  s.job_mesh = mesh;
}

MeshShape job_mesh() {
  ProcessMesh& s = state();
  const std::lock_guard lock(s.mu);
  return s.job_mesh;
}

MeshPlace job_place() { return place_in_mesh(job_mesh(), world_rank()); }

void create_job_groups() {
  if (!launched_by_mpirun()) return;
  const MeshShape mesh = job_mesh();
  tensor_group(mesh);
  if (mesh.data == 1) return;
  ProcessMesh& s = state();
  const std::lock_guard lock(s.mu);
  s.leaders = mpi(s).group_leaders(mesh);
}

Communicator& group_leaders() {
  ProcessMesh& s = state();
  if (!launched_by_mpirun()) return s.local;
  const std::lock_guard lock(s.mu);
  check(s.leaders != nullptr, "group_leaders: this rank leads no data-parallel group of the job's mesh");
  return *s.leaders;
}

int default_threads_per_rank() {
  cpu_set_t mine;
  CPU_ZERO(&mine);
  const int cpus = sched_getaffinity(0, sizeof(mine), &mine) == 0 ? std::max(CPU_COUNT(&mine), 1) : 1;
  if (!in_mpi_job()) return cpus;
  ProcessMesh& s = state();
  const std::lock_guard lock(s.mu);
  return std::max(1, cpus / mpi(s).ranks_sharing_my_cpus());
}

void abort_job(int exit_code) {
  ProcessMesh& s = state();
  if (s.world && s.world->size() > 1) s.world->abort(exit_code);
  std::exit(exit_code);
}

void finish_job() {
  ProcessMesh& s = state();
  const std::lock_guard lock(s.mu);
  // Communicators before the world: they must not outlive MPI_Finalize.
  s.groups.clear();
  s.leaders.reset();
  s.world_group.reset();
  s.world.reset();
}

}  // namespace llama3::dist
