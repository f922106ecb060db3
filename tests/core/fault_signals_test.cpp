// A memory-mapped file truncated by another process while mapped: the next read of a lost page
// raises SIGBUS, which must become one line naming the file and exit code 1, not "Bus error".
#include "core/fault_signals.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/mapped_file.h"
#include "test_support.h"

namespace llama3 {
namespace {

std::filesystem::path write_weights(const testing::TempDir& dir) {
  const auto path = dir / "weights.bin";
  std::ofstream(path, std::ios::binary) << std::string(1 << 16, 'w');
  return path;
}

void read_after_truncation(const std::filesystem::path& path, bool handlers) {
  if (handlers) install_fault_handlers();
  const MappedFile file(path);
  std::filesystem::resize_file(path, 0);  // what a concurrent rewrite (truncate, then write) does
  volatile std::byte b = file.bytes()[40000];
  (void)b;
  std::exit(0);  // not reached
}

TEST(FaultSignalsDeathTest, ATruncatedMappingIsAnErrorNamingTheFile) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const testing::TempDir dir("fault-signals");
  const auto path = write_weights(dir);
  EXPECT_EXIT(read_after_truncation(path, true), ::testing::ExitedWithCode(1),
              "llama3: error: bus error reading .*weights.bin: the file shrank while mapped");
}

// The negative control: without the handlers the same read is a plain SIGBUS (what the user saw
// before: "Bus error" and nothing about the file).
TEST(FaultSignalsDeathTest, WithoutTheHandlersItIsASignal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const testing::TempDir dir("fault-signals-off");
  const auto path = write_weights(dir);
  if (testing::kSanitized) {  // ASan takes SIGBUS itself and reports it
    EXPECT_DEATH(read_after_truncation(path, false), "AddressSanitizer");
  } else {
    EXPECT_EXIT(read_after_truncation(path, false), ::testing::KilledBySignal(SIGBUS), "");
  }
}

// A write past the file-size limit fails (EFBIG) instead of killing the process with SIGXFSZ.
void write_past_the_limit(const std::filesystem::path& path) {
  install_fault_handlers();
  const struct rlimit limit {4096, 4096};
  ::setrlimit(RLIMIT_FSIZE, &limit);
  std::ofstream out(path, std::ios::binary);
  out << std::string(1 << 16, 'x') << std::flush;
  std::exit(out.good() ? 2 : 3);
}

TEST(FaultSignalsDeathTest, AWritePastTheFileSizeLimitFailsInsteadOfKilling) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const testing::TempDir dir("fault-fsize");
  const auto path = dir / "big.bin";
  EXPECT_EXIT(write_past_the_limit(path), ::testing::ExitedWithCode(3), "");
}

}  // namespace
}  // namespace llama3
