// `cmake --install`: the installed tree works after being moved, and a program builds against
// the installed package (tests/install/install_test.sh does the work; this checks its verdict).
#include <fmt/core.h>
#include <gtest/gtest.h>

#include "test_support.h"

namespace llama3 {
namespace {

TEST(Install, TheInstalledBinaryAndPackageWorkFromAnywhere) {
  const auto r = testing::run_command(fmt::format("bash {}/tests/install/install_test.sh {} {}", LLAMA3_SOURCE_DIR,
                                                  LLAMA3_BINARY_DIR, LLAMA3_SOURCE_DIR));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace llama3
