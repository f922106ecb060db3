// `llama3 serve` under load from `llama3 bench-serve`, three times over one server: every
// request that was not abandoned on purpose completes with a well-formed stream, the server
// preempts (its KV pool is kept small on purpose), reuses the shared prefix, notices clients
// that left, returns to idle after each run, and its memory stops growing once warm.
//
// The numbers (about 30 s on 2 idle cores, 75 s beside another busy process): 3 runs of 300
// requests, 64 clients at once against a batch of 32 (32 more wait in the server's queue),
// prompts of a 32-token shared prefix plus 1-96 tokens of their own, 12 generated tokens each,
// 10% closing the connection after 1-3 streamed events; a KV pool of 65 blocks of 32
// positions, where 32 running requests need up to 160, so the scheduler preempts a hundred
// times or more a run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>

#include "serve_process.h"
#include "server/prometheus_text.h"
#include "server_test_util.h"

namespace llama3::server::testing {
namespace {

namespace fs = std::filesystem;
using llama3::testing::run_command;

constexpr int kRuns = llama3::testing::kSanitized ? 2 : 3;  // the third run is for RSS, not judged under ASan
// Under ASan the model is ~10x slower: fewer requests fit the deadline, and the property (every
// request accounted for under preemption and cancellation, the server idle after) is the same.
constexpr int kRequests = llama3::testing::kSanitized ? 40 : 300;
constexpr int kMaxTokens = 12;
// A warm server's resident memory may still move by allocator noise: glibc's per-thread arenas
// and 300 connection threads' stacks settle over the first runs (+8 MiB from the first run to
// the second was seen, then +1.5 MiB and +0.4 MiB). 4 MiB between the second and the third run
// allows that and still fails a leak of 10 KiB per request (a request's prompt, its streamed
// events or its engine state kept after it ends).
constexpr int64_t kRssToleranceKib = 4096;

// The pid of `llama3 serve`: ServeProcess's child, the test's only child process between the
// runs of bench-serve (those are waited for).
pid_t serve_pid() {
  for (const fs::directory_entry& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    const size_t comm_end = stat.rfind(')');  // "pid (comm) state ppid ..."
    if (comm_end == std::string::npos || stat.find("(llama3)") == std::string::npos) continue;
    std::istringstream rest(stat.substr(comm_end + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == ::getpid()) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

int64_t vm_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6));
  }
  return -1;
}

std::optional<double> server_metric(int port, const std::string& series) {
  httplib::Client c("127.0.0.1", port);
  const httplib::Result r = c.Get("/metrics");
  if (!r || r->status != 200) return std::nullopt;
  return sample(parse_prometheus_text(r->body), series);
}

TEST(ServeLoad, EveryRequestCompletesUnderPreemptionAndTheServerReturnsToIdle) {
  SKIP_WITHOUT_TOKENIZER();
  ServeProcess serve({"--weights", "random", "--layers", "1", "--max_seq_len", "256", "--max_batch", "32",
                      "--max_queue", "64", "--prefill_chunk", "32", "--kv_memory", "0.004", "--check_finite", "--port", "0"});
  const int port = serve.wait_for_port();
  ASSERT_GT(port, 0) << serve.stdout_text() << serve.stderr_text();
  const pid_t pid = serve_pid();
  ASSERT_GT(pid, 0) << "cannot find the llama3 serve process";
  const llama3::testing::TempDir dir("load");

  std::vector<int64_t> rss_kib;
  double preemptions = 0.0;
  int64_t client_cancels = 0;
  for (int run = 1; run <= kRuns; ++run) {
    const fs::path report = dir / ("run" + std::to_string(run) + ".json");
    const auto r = run_command(llama3::testing::cli() + " bench-serve --port " + std::to_string(port) +
                               " --requests " + std::to_string(kRequests) +
                               " --concurrency 64 --prompt_tokens 1,96 --shared_prefix 32 --max_tokens " +
                               std::to_string(kMaxTokens) + " --cancel_fraction 0.1 --seed " + std::to_string(run) +
                               " --timeout_s 150 --idle_wait_s 10 --json '" + report.string() + "'");
    ASSERT_EQ(r.exit_code, 0) << "run " << run << ":\n" << r.out << r.err << "\nserver: " << serve.stderr_text();
    const json j = json::parse(llama3::testing::read_text(report));
    const json& s = j["summary"];
    EXPECT_EQ(s["failed"], 0) << j["failures"].dump();
    EXPECT_EQ(s["not_sent"], 0);
    EXPECT_FALSE(j["deadline_hit"].get<bool>());
    EXPECT_EQ(s["completed"].get<int>() + s["cancelled"].get<int>(), kRequests);
    EXPECT_GT(s["cancelled"], 0) << "no request was abandoned mid-stream";
    client_cancels += s["cancelled"].get<int64_t>();
    for (const json& q : j["requests"]) {
      if (q["outcome"] != "completed") continue;
      EXPECT_EQ(q["output_tokens"], kMaxTokens);  // ignore_eos: every answer runs to max_tokens
      EXPECT_EQ(q["finish_reason"], "length");
    }
    // Back to idle: nothing running or waiting, every KV block given back.
    const json& after = j["server"]["after"];
    EXPECT_TRUE(j["server"]["idle_at_end"].get<bool>()) << after.dump();
    EXPECT_EQ(after["requests_running"], 0.0);
    EXPECT_EQ(after["kv_blocks_used"], 0.0);
    // --check_finite: every sampled token's row of logits was checked, and none held NaN/Inf.
    const json& before = j["server"]["before"];
    const double checked = after["logits_checked"].get<double>() - before["logits_checked"].get<double>();
    EXPECT_GT(checked, 0.0);
    EXPECT_EQ(checked, after["generation_tokens"].get<double>() - before["generation_tokens"].get<double>());
    EXPECT_EQ(after["logits_nonfinite"], 0.0);
    EXPECT_GT(j["server"]["prefix_cache_hit_rate"].get<double>(), 0.1) << "the shared prefix was not reused";
    preemptions += j["server"]["preemptions"].get<double>();
    rss_kib.push_back(vm_rss_kib(pid));
    std::cout << "run " << run << ": " << s["completed"] << " completed, " << s["cancelled"] << " cancelled in "
              << s["duration_s"] << " s, " << j["server"]["preemptions"] << " preemptions, prefix-cache hit rate "
              << j["server"]["prefix_cache_hit_rate"] << ", server VmRSS " << rss_kib.back() << " KiB\n";
  }
  EXPECT_GT(preemptions, 0) << "the KV pool was meant to run out";
  // The server saw clients leave and cancelled their generation (not every one: a request may
  // finish before the server writes to the closed connection).
  const std::optional<double> engine_cancels = server_metric(port, "llama3_engine_requests_total{outcome=\"cancelled\"}");
  ASSERT_TRUE(engine_cancels.has_value());
  EXPECT_GT(*engine_cancels, 0) << client_cancels << " requests closed their connection mid-stream";
  EXPECT_LE(*engine_cancels, static_cast<double>(client_cancels));
  ASSERT_EQ(rss_kib.size(), static_cast<size_t>(kRuns));
  if (!llama3::testing::kSanitized) {  // ASan's quarantine holds freed memory: RSS would measure it
    EXPECT_LE(rss_kib[2] - rss_kib[1], kRssToleranceKib)
        << "VmRSS after the runs: " << rss_kib[0] << ", " << rss_kib[1] << ", " << rss_kib[2] << " KiB";
  }
  EXPECT_EQ(serve.stop(SIGTERM), 0) << serve.stderr_text();
}

// The deadline is a hard bound: a run that cannot finish stops by itself, reports the requests
// it cut off and the ones it never sent, and exits non-zero.
TEST(ServeLoad, BenchServeStopsAtItsDeadline) {
  SKIP_WITHOUT_TOKENIZER();
  ServeProcess serve({"--weights", "random", "--layers", "1", "--max_seq_len", "1024", "--max_batch", "2", "--port", "0"});
  const int port = serve.wait_for_port();
  ASSERT_GT(port, 0) << serve.stdout_text() << serve.stderr_text();
  const llama3::testing::TempDir dir("load-deadline");
  const auto start = std::chrono::steady_clock::now();
  // 200 requests of 1000 tokens each on a batch of 2 take minutes; the deadline is 2 s.
  const auto r = run_command(llama3::testing::cli() + " bench-serve --port " + std::to_string(port) +
                             " --requests 200 --concurrency 4 --prompt_tokens 16 --max_tokens 1000 --timeout_s 2"
                             " --idle_wait_s 10 --json '" + (dir / "r.json").string() + "'");
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_LT(took, 2 + 5 + 10 + 5) << "deadline, stop grace, idle wait, start-up";
  const json j = json::parse(llama3::testing::read_text(dir / "r.json"));
  EXPECT_TRUE(j["deadline_hit"].get<bool>());
  EXPECT_EQ(j["summary"]["failed"], 4) << "the 4 in flight are cut off";
  EXPECT_EQ(j["summary"]["not_sent"], 196);
  EXPECT_THAT(r.out, ::testing::HasSubstr("stopped at the --timeout_s deadline"));
  // Cut-off clients are clients that left: the server frees what they held.
  EXPECT_TRUE(j["server"]["idle_at_end"].get<bool>()) << j["server"].dump();
  EXPECT_EQ(serve.stop(SIGTERM), 0) << serve.stderr_text();
}

}  // namespace
}  // namespace llama3::server::testing
