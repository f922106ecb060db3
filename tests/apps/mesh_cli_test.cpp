// `llama3` under mpirun: rank 0 runs the command, the other ranks hold and compute their shares
// of the model, and the output is the one-rank output. Failures end every rank with a message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "model/reference_compare.h"
#include "model/reference_models.h"
#include "test_support.h"

namespace llama3::testing {
namespace {

// Builds without MPI refuse meshes (tests/dist covers that message); these need mpirun.
#define SKIP_WITHOUT_MPI() \
  if (!LLAMA3_HAVE_MPI) GTEST_SKIP() << "built without MPI"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// Open MPI refuses root unless told; CI runs as root, so the permission goes into this command's
// environment only. Ranks talk over shared memory (no network in the test sandbox); `timeout`
// turns a hang into a failure instead of a stuck suite.
// Sanitized builds: Open MPI's own allocations outlive MPI_Finalize (tests/mpi_lsan.supp).
std::string mpirun(const std::string& ranks) {
  const std::string lsan = kSanitized ? std::string(" LSAN_OPTIONS=suppressions=") + LLAMA3_SOURCE_DIR +
                                            "/tests/mpi_lsan.supp:fast_unwind_on_malloc=0:print_suppressions=0"
                                      : "";
  return "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader "
         "OMPI_MCA_btl_vader_single_copy_mechanism=none" + lsan + " timeout 120 mpirun --oversubscribe --bind-to none " +
         ranks + " ";
}

const std::string kGenerate =
    " generate --weights random --layers 2 --optimizations bf16 --weight_cache off --threads 1 "
    "--tokens 128000,791,6864,315,9822,374 --max_generated_tokens 8";

nlohmann::json generated(const CommandResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return nullptr;
  return nlohmann::json::parse(r.out.substr(0, r.out.find('\n')))["generated"];
}

// The 1B shape's greedy continuation on 2 and 4 ranks is the one-rank continuation: the ranks
// hold disjoint shares (2 or 4 of its 8 kv heads each) and compute the same model.
TEST(MeshCli, GreedyTokensOnTwoAndFourRanksAreTheOneRankTokens) {
  SKIP_WITHOUT_MPI();
  // Under ASan each run's share of the 1B shape takes ~7 s to generate: CI's time goes to the
  // sanitized Mesh.ranks* tests, which run the same tensor-parallel code on small models.
  if (kSanitized) GTEST_SKIP() << "covered under ASan by Mesh.ranks*";
  const nlohmann::json one = generated(run_command(cli() + kGenerate));
  ASSERT_EQ(one.size(), 8u);
  for (const std::string n : {"2", "4"}) {
    SCOPED_TRACE(n + " ranks");
    const CommandResult r = run_command(mpirun("-np " + n) + cli() + kGenerate + " --mesh " + n + "x1");
    EXPECT_EQ(generated(r), one);
    // Only rank 0 prints: one result line.
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

TEST(MeshCli, AMeshTheWorldDoesNotFitNamesTheMpirunItNeeds) {
  SKIP_WITHOUT_MPI();
  const CommandResult r = run_command(mpirun("-np 2") + cli() + kGenerate + " --mesh T3K");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("mpirun -np 8"));
  const CommandResult alone = run_command(cli() + kGenerate + " --mesh N300");
  EXPECT_NE(alone.exit_code, 0);
  EXPECT_THAT(alone.err, HasSubstr("mpirun -np 2"));
  const CommandResult bad = run_command(cli() + kGenerate + " --mesh 3y1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("mesh"));
}

// `llama3 bench` on a mesh splits a decode step into computing and communicating, with the
// collectives a step makes: per layer two all-reduces of the activations (one token: dim floats)
// and one for the embedding, and one gather of the logits (each rank its vocabulary half).
TEST(MeshCli, BenchCountsTheCollectivesOfADecodeStep) {
  SKIP_WITHOUT_MPI();
  if (kSanitized) GTEST_SKIP() << "the 1B shape under ASan: ~20 s for a count the plain build checks";
  TempDir dir("mesh-bench");
  const CommandResult r = run_command(
      mpirun("-np 2") + cli() +
      " bench --weights random --layers 3 --optimizations bf16 --weight_cache off --threads 1 --mesh 2x1 "
      "--prefill 0 --decode 0 --batch_sizes 1,4 --steps 2 --reps 1 --context 8 --json " +
      (dir / "b.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("mesh of 2 ranks, per decode step"));
  const nlohmann::json j = nlohmann::json::parse(read_text(dir / "b.json"));
  ASSERT_EQ(j["mesh"]["steps"].size(), 2u);
  for (const auto& [row, batch] : {std::pair{0, 1}, {1, 4}}) {
    const nlohmann::json& step = j["mesh"]["steps"][row];
    EXPECT_EQ(step["all_reduces_per_step"], 2 * 3 + 1);
    EXPECT_EQ(step["all_reduce_bytes_each"], batch * 2048 * 4);         // batch tokens x dim fp32
    EXPECT_EQ(step["gathered_bytes_per_step"], batch * 128256 / 2 * 4);  // each rank's half of the logits
    EXPECT_GT(step["communication_ms_per_step"].get<double>(), 0.0);
    EXPECT_LT(step["communication_ms_per_step"].get<double>(), step["ms_per_step"].get<double>());
  }
  // Gathering 32 candidates per row (top-k sampling) instead of the rows: 32 x 8 bytes per row.
  const CommandResult k = run_command(
      mpirun("-np 2") + cli() +
      " bench --weights random --layers 1 --optimizations bf16 --weight_cache off --mesh 2x1 --logit_candidates 32 "
      "--prefill 0 --decode 0 --batch_sizes 4 --steps 1 --reps 1 --context 8 --json " +
      (dir / "k.json").string());
  ASSERT_EQ(k.exit_code, 0) << k.err;
  const nlohmann::json jk = nlohmann::json::parse(read_text(dir / "k.json"));
  EXPECT_EQ(jk["mesh"]["steps"][0]["gathered_bytes_per_step"], 4 * 32 * 8);
  // Without --threads each of the 2 unbound ranks on this host takes its share of the CPUs.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  ASSERT_EQ(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
  EXPECT_EQ(jk["threads"], std::max(1, CPU_COUNT(&cpus) / 2));
}

// One machine's share of a cluster's work, timed alone: `bench --shard R/T` builds rank R's
// slices (no MPI) and its collectives move nothing, but are still counted.
TEST(MeshCli, BenchTimesOneRanksShareAlone) {
  if (kSanitized) GTEST_SKIP() << "the 1B shape under ASan; DistSoloCommunicator covers the communicator there";
  TempDir dir("shard-bench");
  const CommandResult r = run_command(
      cli() + " bench --weights random --layers 1 --weight_cache off --threads 1 --shard 1/4 --prefill 0 --decode 0 "
              "--batch_sizes 2 --steps 2 --reps 1 --context 8 --idle_wait 0 --max_redo 0 --json " +
              (dir / "b.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("rank 1 of 4: query heads 8..15, kv heads 2..3"));
  const nlohmann::json j = nlohmann::json::parse(read_text(dir / "b.json"));
  EXPECT_EQ(j["mesh"]["ranks"], 4);
  EXPECT_EQ(j["mesh"]["steps"][0]["all_reduces_per_step"], 3);
  EXPECT_EQ(j["mesh"]["steps"][0]["gathered_bytes_per_step"], 2 * 128256 / 4 * 4);
  const CommandResult bad = run_command(cli() + " bench --weights random --layers 1 --shard 4/4");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("rank 4 of 4 is not a rank"));
}

// One rank cannot build its share (its address space is capped at 300 MB, below the ~560 MB of
// its half of the embedding and LM head): rank 0 says which rank failed and why, and every rank
// exits.
TEST(MeshCli, ARankThatCannotOpenItsShareEndsTheJobWithItsError) {
  SKIP_WITHOUT_MPI();
  const std::string args = kGenerate + " --mesh 2x1";
  const CommandResult r = run_command(mpirun("-np 1 " + cli() + args + " : -np 1 sh -c 'ulimit -v 300000; exec " +
                                             cli() + args + "'") +
                                      "");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.exit_code == 124, false) << "the job hung until timeout killed it";
  // ASan reserves terabytes of shadow address space at start, which `ulimit -v` forbids: the
  // capped rank dies at start-up there, and only "the job ends" is checked.
  if (kSanitized) return;
  EXPECT_THAT(r.err, HasSubstr("llama3: error: mesh: rank 1 could not open its share of the model: out of memory"));
}

// A rank that dies before the job starts: mpirun ends the job, nothing waits forever.
TEST(MeshCli, ADeadRankEndsTheJob) {
  SKIP_WITHOUT_MPI();
  const CommandResult r =
      run_command(mpirun("-np 1 " + cli() + kGenerate + " --mesh 2x1 : -np 1 sh -c 'exit 3'") + "");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 124) << "the job hung until timeout killed it";
}

// A checkpoint on a mesh: each rank maps the files and converts only its slices (Meta's .pth
// shards merged, a Hugging Face folder with its q/k rows un-permuted, a GGUF), and the logits at
// every position match the float64 reference within the one-rank tolerance, greedy tokens too.
TEST(MeshCli, ACheckpointOnTwoAndFourRanksMatchesTheReference) {
  SKIP_WITHOUT_MPI();
  const ReferenceModel& m = gqa_tied_s8();  // 4 query heads on 2 kv heads: on 4 ranks each kv head twice
  const ReferencePrompt& ref = m.prompts.at(1);
  for (const auto& [variant, ranks] : {std::pair{"meta2", 2}, {"hf", 4}, {"gguf", 2}}) {
    const std::string n = std::to_string(ranks);
    const EngineRun run = run_engine(m.folder(variant), ref.tokens, static_cast<int>(ref.greedy.size()), true,
                                     kF32Kv + " --threads 1 --mesh " + n + "x1", "", mpirun("-np " + n));
    expect_agrees(run, ref, kLogitTol, fmt::format("gqa_tied_s8/{} on {} ranks", variant, ranks));
  }
}

// Each rank maps its own copy of the checkpoint: one whose files differ from rank 0's is refused
// by name on rank 0, and every rank exits; an identical copy elsewhere (LLAMA3_LOCAL_MODEL_DIR on
// that rank) runs.
TEST(MeshCli, ARankWhoseCopyOfTheCheckpointDiffersEndsTheJob) {
  SKIP_WITHOUT_MPI();
  const fs::path original = gqa_tied_s8().folder("hf");
  TempDir dir("mesh-copies");
  fs::copy(original, dir / "same");
  fs::copy(original, dir / "other");
  {
    std::ofstream config(dir / "other" / "config.json", std::ios::app);
    config << "\n";
  }
  const std::string args = " generate --model_dir " + original.string() +
                           " --tokens 1,2,3 --max_generated_tokens 4 --optimizations bf16 --threads 1 --mesh 2x1";
  auto with_copy = [&](const std::string& copy) {
    return run_command(mpirun("-np 1 " + cli() + args + " : -np 1 env LLAMA3_LOCAL_MODEL_DIR=" + (dir / copy).string() +
                              " " + cli() + args));
  };
  const CommandResult same = with_copy("same");
  EXPECT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(generated(same), generated(run_command(cli() + args.substr(0, args.find(" --mesh")))));
  const CommandResult other = with_copy("other");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.exit_code, 124) << "the job hung until timeout killed it";
  EXPECT_THAT(other.err, HasSubstr("rank 1 could not open its share of the model: its copy of the checkpoint " +
                                   (dir / "other").string() + " differs from rank 0's: config.json has"));
}

// A mesh of D data-parallel groups splits the demo's users into D contiguous groups, each run
// by its own tensor-parallel replica; rank 0 prints every user's text, and (the users' random
// streams being their own) every text is the one-rank text, sampled as the demo samples
// (temperature 0.6, top_k 32). 2x2 on 4 ranks, and the original's TG (8x4, 32 ranks) with 32 users.
TEST(MeshCli, DataParallelGroupsSplitTheDemosUsersAndKeepEveryText) {
  SKIP_WITHOUT_MPI();
  if (kSanitized) GTEST_SKIP() << "32 ranks of the 1B shape under ASan; DistMpi covers the leaders' exchange there";
  TempDir dir("mesh-data-parallel");
  auto users = [&](const std::string& launcher, const std::string& flags, int batch) {
    const std::string report = (dir / "r.json").string();
    const CommandResult r =
        run_command(launcher + cli() + " demo --weights random --layers 1 --max_generated_tokens 3 --batch_size " +
                    std::to_string(batch) + " --report " + report + flags);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    if (r.exit_code != 0) return nlohmann::json();
    const nlohmann::json parsed = nlohmann::json::parse(read_text(report));
    nlohmann::json texts = nlohmann::json::array();
    for (const auto& u : parsed["users"]) texts.push_back(u["generated_tokens"]);
    EXPECT_EQ(texts.size(), static_cast<size_t>(batch));
    return texts;
  };
  const nlohmann::json four = users("", "", 4);
  EXPECT_EQ(users(mpirun("-np 4"), " --mesh 2x2", 4), four);
  const nlohmann::json thirty_two = users("", "", 32);
  EXPECT_EQ(users(mpirun("-np 32"), " --FAKE_DEVICE TG", 32), thirty_two);
  // Another command on a mesh of data-parallel groups, and a batch that does not split.
  const CommandResult generate = run_command(mpirun("-np 4") + cli() + kGenerate + " --mesh 2x2");
  EXPECT_NE(generate.exit_code, 0);
  EXPECT_THAT(generate.err, HasSubstr("its 2 data-parallel groups split the demo's users"));
  const CommandResult odd =
      run_command(mpirun("-np 4") + cli() + " demo --weights random --layers 1 --mesh 2x2 --batch_size 3");
  EXPECT_NE(odd.exit_code, 0);
  EXPECT_THAT(odd.err, HasSubstr("--batch_size 3 does not split over its 2 data-parallel groups"));
}

// The 70B preset (2 of its 80 layers) where each process may use 3 GiB: one rank is refused
// by the memory plan, which names the mesh that would hold it; on 8 ranks (T3K) each holds its
// eighth (~0.5 GiB of weights) and the job runs.
TEST(MeshCli, SeventyBDoesNotFitOneRankButRunsOnEight) {
  SKIP_WITHOUT_MPI();
  if (kSanitized) GTEST_SKIP() << "8 ranks of the 70B shape under ASan: minutes";
  const std::string args =
      " generate --model Llama-3.1-70B --weights random --layers 2 --memory_limit 3 --weight_cache off "
      "--tokens 128000,791,6864,315 --max_generated_tokens 2";
  const CommandResult alone = run_command(cli() + args);
  EXPECT_NE(alone.exit_code, 0);
  EXPECT_THAT(alone.err, HasSubstr("not enough memory for Llama-3.1-70B, 2 layers"));
  EXPECT_THAT(alone.err, HasSubstr("a mesh of 2 machines like this one"));
  const CommandResult mesh = run_command(mpirun("-np 8") + cli() + args + " --mesh T3K");
  EXPECT_EQ(generated(mesh).size(), 2u);
}

// A rank running another build of llama3 (the sanitized build beside the plain one, or the
// other way round: CI builds both, one after the other) ends the job, the builds named on rank 0.
TEST(MeshCli, ARankRunningAnotherBuildEndsTheJob) {
  SKIP_WITHOUT_MPI();
  const fs::path other = fs::path(LLAMA3_SOURCE_DIR) / (kSanitized ? "build" : "build-sanitize") / "llama3";
  if (!fs::exists(other)) GTEST_SKIP() << "no other build at " << other.string();
  const std::string args = kGenerate + " --mesh 2x1";
  const CommandResult r = run_command(mpirun("-np 1 " + cli() + args + " : -np 1 " + other.string() + args));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, 124) << "the job hung until timeout killed it";
  EXPECT_THAT(r.err, HasSubstr("rank 1 could not open its share of the model: it runs llama3 0.1 built"));
  EXPECT_THAT(r.err, HasSubstr("every rank needs the same build"));
}

}  // namespace
}  // namespace llama3::testing
