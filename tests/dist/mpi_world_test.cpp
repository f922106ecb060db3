// The parts of mpi_world.h that need no MPI job: these tests run as one plain process.
#include "dist/mpi_world.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <optional>
#include <string>

#include "core/error.h"

namespace llama3::dist {
namespace {

// Saves the launcher variables, clears them, and puts them back when the test ends.
class LauncherEnvironment {
 public:
  static constexpr std::array<const char*, 3> kNames = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};

  LauncherEnvironment() {
    for (size_t i = 0; i < kNames.size(); ++i) {
      if (const char* v = std::getenv(kNames[i])) saved_[i] = v;
      unsetenv(kNames[i]);
    }
  }
  ~LauncherEnvironment() {
    for (size_t i = 0; i < kNames.size(); ++i) {
      if (saved_[i]) {
        setenv(kNames[i], saved_[i]->c_str(), 1);
      } else {
        unsetenv(kNames[i]);
      }
    }
  }
  LauncherEnvironment(const LauncherEnvironment&) = delete;
  LauncherEnvironment& operator=(const LauncherEnvironment&) = delete;

 private:
  std::array<std::optional<std::string>, 3> saved_;
};

TEST(DistLaunchedByMpirun, NoLauncherVariables) {
  LauncherEnvironment env;
  EXPECT_FALSE(launched_by_mpirun());
}

TEST(DistLaunchedByMpirun, AnyLaunchersVariable) {
  LauncherEnvironment env;
  for (const char* name : LauncherEnvironment::kNames) {
    setenv(name, "2", 1);
    EXPECT_TRUE(launched_by_mpirun()) << name;
    unsetenv(name);
    EXPECT_FALSE(launched_by_mpirun()) << name;
  }
}

#if !LLAMA3_HAVE_MPI
TEST(DistMpiWorld, ABuildWithoutMpiSaysHowToGetIt) {
  try {
    MpiWorld world;
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "this llama3 was built without MPI (install libopenmpi-dev and rebuild)");
  }
}
#endif

}  // namespace
}  // namespace llama3::dist
