// main() of the MPI test executables: one MPI world for the whole run, GoogleTest on every rank,
// the report printed by rank 0 only (other ranks print just their failures, tagged with the
// rank), and one verdict: every rank exits non-zero when any rank failed.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "core/error.h"
#include "mpi_test_world.h"

namespace llama3::testing {
namespace {

dist::MpiWorld* g_world = nullptr;
dist::Communicator* g_world_group = nullptr;

// Replaces GoogleTest's report on ranks other than 0: N copies of it would bury rank 0's, but
// a failure seen only on rank 2 must still be visible.
class FailuresOnlyPrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailuresOnlyPrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, result.file_name() ? result.file_name() : "?",
                 result.line_number(), result.message());
  }
  void OnTestEnd(const ::testing::TestInfo& test) override {
    if (test.result()->Failed()) {
      std::fprintf(stderr, "[rank %d] FAILED %s.%s\n", rank_, test.test_suite_name(), test.name());
    }
  }

 private:
  int rank_;
};

}  // namespace

dist::MpiWorld& mpi_world() { return *g_world; }
dist::Communicator& world_group() { return *g_world_group; }

}  // namespace llama3::testing

int main(int argc, char** argv) {
  namespace dist = llama3::dist;
  ::testing::InitGoogleTest(&argc, argv);
  std::optional<dist::MpiWorld> world;
  try {
    world.emplace();
  } catch (const llama3::Error& e) {
    std::fprintf(stderr, "cannot start MPI: %s\n", e.what());
    return 1;
  }
  const std::unique_ptr<dist::Communicator> group = world->tensor_group({world->size(), 1});
  llama3::testing::g_world = &*world;
  llama3::testing::g_world_group = group.get();

  const int rank = world->rank();
  if (rank != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new llama3::testing::FailuresOnlyPrinter(rank));
  }
  const bool failed_here = RUN_ALL_TESTS() != 0;

  // The number of ranks that failed, known to all; a float sum of 0/1 values is exact.
  float failed_ranks = failed_here ? 1.0f : 0.0f;
  group->all_reduce_sum(std::span(&failed_ranks, 1));
  if (rank == 0 && failed_ranks > 0) {
    std::fprintf(stderr, "%d of %d rank(s) failed (other ranks' failures are tagged [rank N] above)\n",
                 static_cast<int>(failed_ranks), world->size());
  }
  return failed_ranks > 0 ? 1 : 0;
}
