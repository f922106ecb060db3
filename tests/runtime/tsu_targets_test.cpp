#include "runtime/tsu_targets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "core/error.h"
#include "runtime/rss.h"
#include "test_support.h"

namespace llama3::runtime {
namespace {

namespace fs = std::filesystem;
using llama3::testing::TempDir;
using llama3::testing::write_text;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

const char* const kTable = R"([
  {"model": "llama-3.2-1b", "layers": 16, "batch": 32, "optimizations": "performance",
   "min_tsu": 10.0, "max_tsu": 14.5, "note": "measured on the CI machine"},
  {"model": "llama-3.2-1b", "layers": 16, "batch": 1, "optimizations": "performance",
   "min_tsu": 40, "max_tsu": 60},
  {"model": "llama-3.1-8b", "layers": 1, "batch": 32, "optimizations": "accuracy",
   "min_tsu": 0, "max_tsu": 100}
])";

TEST(TsuTargets, LoadsAndFindsExactMatches) {
  TempDir dir("tsu");
  write_text(dir / "t.json", kTable);
  const auto table = load_tsu_targets(dir / "t.json");
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table[0].model, "llama-3.2-1b");
  EXPECT_EQ(table[0].layers, 16);
  EXPECT_EQ(table[0].batch, 32);
  EXPECT_EQ(table[0].optimizations, "performance");
  EXPECT_DOUBLE_EQ(table[0].min_tsu, 10.0);
  EXPECT_DOUBLE_EQ(table[0].max_tsu, 14.5);
  const auto found = find_tsu_target(table, "llama-3.2-1b", 16, 1, "performance");
  ASSERT_TRUE(found.has_value());
  EXPECT_DOUBLE_EQ(found->min_tsu, 40.0);
  EXPECT_FALSE(find_tsu_target(table, "llama-3.2-1b", 16, 32, "accuracy"));
  EXPECT_FALSE(find_tsu_target(table, "llama-3.2-1b", 15, 32, "performance"));
  EXPECT_FALSE(find_tsu_target(table, "llama-3.2-3b", 16, 32, "performance"));
  EXPECT_FALSE(find_tsu_target(table, "llama-3.2-1b", 16, 16, "performance"));
}

TEST(TsuTargets, EmptyListAndTheCommittedTableLoad) {
  TempDir dir("tsu-empty");
  write_text(dir / "t.json", "[]");
  EXPECT_TRUE(load_tsu_targets(dir / "t.json").empty());
  EXPECT_NO_THROW(load_tsu_targets(fs::path(LLAMA3_SOURCE_DIR) / "demo" / "tsu_targets.json"));
}

TEST(TsuTargets, RejectsBadFilesNamingTheProblem) {
  TempDir dir("tsu-bad");
  const std::string ok = R"("model": "m", "layers": 1, "batch": 1, "optimizations": "o")";
  const std::pair<std::string, const char*> cases[] = {
      {"[", "invalid JSON"},
      {"{}", "expected a JSON list"},
      {"[1]", "entry [0]: expected an object"},
      {"[{" + ok + R"(, "min_tsu": 1, "max_tsu": 2, "colour": 1}])", "unknown key 'colour'"},
      {"[{" + ok + R"(, "min_tsu": 1}])", "'max_tsu' is missing"},
      {R"([{"layers": 1, "batch": 1, "optimizations": "o", "min_tsu": 1, "max_tsu": 2}])",
       "'model' is missing"},
      {"[{" + ok + R"(, "min_tsu": "1", "max_tsu": 2}])", "'min_tsu' must be a number"},
      {"[{" + ok + R"(, "min_tsu": -1, "max_tsu": 2}])", "'min_tsu' must be a number >= 0"},
      {"[{" + ok + R"(, "min_tsu": 3, "max_tsu": 2}])", "min_tsu 3 > max_tsu 2"},
      {R"([{"model": "m", "layers": 0, "batch": 1, "optimizations": "o", "min_tsu": 1,
           "max_tsu": 2}])",
       "'layers' must be an integer >= 1"},
      {R"([{"model": "m", "layers": 1, "batch": 2.5, "optimizations": "o", "min_tsu": 1,
           "max_tsu": 2}])",
       "'batch' must be an integer >= 1"},
      {R"([{"model": "", "layers": 1, "batch": 1, "optimizations": "o", "min_tsu": 1,
           "max_tsu": 2}])",
       "'model' must be a non-empty string"},
      {"[{" + ok + R"(, "min_tsu": 1, "max_tsu": 2}, {)" + ok + R"(, "min_tsu": 3, "max_tsu": 4}])",
       "entry [1]: a second entry"},
  };
  const fs::path file = dir / "t.json";
  for (const auto& [content, message] : cases) {
    write_text(file, content);
    EXPECT_THAT([&] { load_tsu_targets(file); },
                ThrowsMessage<Error>(AllOf(HasSubstr(file.string()), HasSubstr(message))))
        << content;
  }
  EXPECT_THAT([&] { load_tsu_targets(dir / "missing.json"); },
              ThrowsMessage<Error>(HasSubstr("cannot read")));
}

TEST(TsuCheck, CountsIterationsOutsideTheRange) {
  const TsuTarget target{"m", 1, 32, "o", 10.0, 20.0};
  std::vector<double> tsu(100, 15.0);
  auto r = check_tsu(target, tsu);
  EXPECT_EQ(r.total, 100);
  EXPECT_EQ(r.outside, 0);
  EXPECT_TRUE(r.passed);
  tsu[0] = 10.0;  // the bounds are inside
  tsu[1] = 20.0;
  EXPECT_EQ(check_tsu(target, tsu).outside, 0);
  for (int i = 0; i < 20; ++i) tsu[i] = i % 2 ? 9.99 : 20.01;
  r = check_tsu(target, tsu);
  EXPECT_EQ(r.outside, 20);
  EXPECT_TRUE(r.passed);  // 20 outside is still allowed
  tsu[50] = std::numeric_limits<double>::quiet_NaN();
  r = check_tsu(target, tsu);
  EXPECT_EQ(r.outside, 21);
  EXPECT_FALSE(r.passed);  // more than 20
  EXPECT_TRUE(check_tsu(target, tsu, 21).passed);
  EXPECT_FALSE(check_tsu(target, tsu, 0).passed);
  EXPECT_TRUE(check_tsu(target, {}).passed);
  EXPECT_THROW(check_tsu(target, tsu, -1), Error);
}

// rss.h has no test file of its own; it is a demo metric like the TSU check.
TEST(Rss, ReportsCurrentAndPeakResidentMemory) {
  const size_t before = current_rss_bytes();
  ASSERT_GT(before, 0u);
  EXPECT_GE(peak_rss_bytes(), before);
  constexpr size_t kBytes = size_t{64} << 20;
  auto block = std::make_unique<char[]>(kBytes);
  std::memset(block.get(), 1, kBytes);  // touch every page so it becomes resident
  const size_t during = current_rss_bytes();
  // At least 3/4 of the 64 MiB must show up (the allocator may reuse some freed memory).
  EXPECT_GE(during, before + kBytes * 3 / 4);
  EXPECT_GE(peak_rss_bytes(), during);
  EXPECT_EQ(block[kBytes - 1], 1);
}

// The stress runs tell a leak from a held free list by these two figures, so each must move with
// what the program allocates and frees.
TEST(Rss, HeapUsageFollowsAllocationsAndFrees) {
  const std::optional<HeapUsage> start = heap_usage();
  if (llama3::testing::kSanitized) {  // ASan's allocator replaces malloc; glibc's mallinfo2 does not see it
    EXPECT_FALSE(start.has_value()) << "figures that cannot see the allocations must not be shown";
    return;
  }
  ASSERT_TRUE(start.has_value()) << "glibc 2.33 or later reports mallinfo2";
  // 256 chunks of 16 KiB: below the mmap threshold, so they come from the arena.
  constexpr size_t kChunk = 16 << 10, kCount = 256;
  std::vector<std::unique_ptr<char[]>> chunks;
  for (size_t i = 0; i < kCount; ++i) {
    chunks.push_back(std::make_unique<char[]>(kChunk));
    chunks.back()[0] = static_cast<char>(i);
  }
  const HeapUsage full = *heap_usage();
  EXPECT_GE(full.in_use, start->in_use + kChunk * kCount);
  // Free every other chunk: the holes cannot go back to the system, so they are held as free.
  for (size_t i = 0; i < kCount; i += 2) chunks[i].reset();
  const HeapUsage holes = *heap_usage();
  EXPECT_LE(holes.in_use + kChunk * kCount / 2, full.in_use + kChunk);  // one chunk of slack for bookkeeping
  EXPECT_GE(holes.free_held, full.free_held + kChunk * kCount / 4);
  // A large block is mmapped and counted as in use too.
  constexpr size_t kLarge = size_t{8} << 20;
  auto large = std::make_unique<char[]>(kLarge);
  large[0] = 1;
  EXPECT_GE(heap_usage()->in_use, holes.in_use + kLarge);
}

}  // namespace
}  // namespace llama3::runtime
