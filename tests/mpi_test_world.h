#pragma once
// What MPI test executables (llama3_mpi_test_executable in CMakeLists.txt) share: the one MPI
// world of the run, made by mpi_test_main.cpp before any test. Every test is a collective call:
// all ranks run the same tests in the same order, so a test must not skip a collective on some
// ranks (use EXPECT_*, not ASSERT_*, before a collective) or the ranks fall out of step.
#include "dist/communicator.h"
#include "dist/mpi_world.h"

namespace llama3::testing {

dist::MpiWorld& mpi_world();

// Every rank of the world as one tensor group (mesh <ranks>x1).
dist::Communicator& world_group();

}  // namespace llama3::testing
