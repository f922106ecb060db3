#pragma once
// This process's place in an MPI job, for the whole process: MPI is initialized at most once,
// on first use, and finalized at exit. Without mpirun the process is a world of one rank and
// MPI is never touched, so every command works as before.
#include "dist/communicator.h"
#include "dist/mesh.h"

namespace llama3::dist {

// True when mpirun started this process with more than one rank.
bool in_mpi_job();
int world_rank();  // 0 outside an MPI job
int world_size();  // 1 outside an MPI job

// Every rank of the job (rank 0 hands out jobs over it, mesh_jobs.h).
Communicator& world();

// The tensor-parallel group of this rank in `mesh`, created on first use. Throws llama3::Error
// (with the mpirun -np the mesh needs) when the world does not fit the mesh.
Communicator& tensor_group(MeshShape mesh);

// The worker threads this rank should run by default: the CPUs it may run on, shared with the
// other ranks on its host that may run on the same ones (mpirun --bind-to none, or several
// ranks bound to one socket), so ranks on one machine do not oversubscribe its cores. A
// collective call of every rank in an MPI job; outside one, the CPUs this process may run on.
int default_threads_per_rank();

// The mesh this process's job runs (main sets it from the command line, which every rank is
// given; a 1x1 mesh until then), and this rank's place in it.
void set_job_mesh(MeshShape mesh);
MeshShape job_mesh();
MeshPlace job_place();

// Creates the job mesh's communicators (the tensor groups and, with data-parallel groups, their
// leaders'): a collective call every rank makes once, at start, so that no rank waits later in
// a creation the others never reach.
void create_job_groups();

// The leaders of the job mesh's data-parallel groups (tensor rank 0 of each, by group): they
// each run the command on their group's share of the users (the demo), and exchange results
// over this. Made by create_job_groups; throws on the other ranks.
Communicator& group_leaders();

// Ends every rank of the job with `exit_code` (MPI_Abort): a fatal error on one rank must not
// leave the others waiting in a collective. Outside an MPI job, std::exit.
[[noreturn]] void abort_job(int exit_code);

// Releases MPI (MPI_Finalize) if this process initialized it; called once at the end of main.
void finish_job();

}  // namespace llama3::dist
