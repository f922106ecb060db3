// Progress lines off a terminal: silent for short work, plain lines with the figures for long
// work and a closing line, nothing at all when quiet.
#include "core/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

namespace llama3 {
namespace {

using ::testing::HasSubstr;

struct File {
  std::unique_ptr<FILE, decltype(&std::fclose)> f{std::tmpfile(), &std::fclose};
  std::string text() {
    std::fflush(f.get());
    std::rewind(f.get());
    std::string out;
    char buf[512];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) out.append(buf, n);
    return out;
  }
};

TEST(Progress, WorkShorterThanASecondPrintsNothing) {
  File out;
  {
    Progress p("short", 100, "tokens", out.f.get());
    p.advance(50);
    p.advance(50);
  }
  EXPECT_EQ(out.text(), "");
}

TEST(Progress, LongWorkPrintsPlainLinesWithTheFiguresAndATotal) {
  File out;
  {
    Progress p("prefill", 1000, "tokens", out.f.get());
    p.advance(100);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    p.advance(400);  // past the first second: a line
    p.advance(500);  // within 5 s of it: no line
  }  // the destructor closes with the total
  const std::string text = out.text();
  EXPECT_THAT(text, HasSubstr("prefill:  50% 500/1000 tokens"));
  EXPECT_THAT(text, HasSubstr("prefill: 100% 1000/1000 tokens"));
  EXPECT_THAT(text, HasSubstr("total"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << "no carriage returns off a terminal";
}

TEST(Progress, QuietPrintsNothing) {
  File out;
  Progress::set_quiet(true);
  {
    Progress p("quiet", 10, "MB", out.f.get());
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    p.advance(10);
  }
  Progress::set_quiet(false);
  EXPECT_EQ(out.text(), "");
}

}  // namespace
}  // namespace llama3
