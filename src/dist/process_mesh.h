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

// Ends every rank of the job with `exit_code` (MPI_Abort): a fatal error on one rank must not
// leave the others waiting in a collective. Outside an MPI job, std::exit.
[[noreturn]] void abort_job(int exit_code);

// Releases MPI (MPI_Finalize) if this process initialized it; called once at the end of main.
void finish_job();

}  // namespace llama3::dist
