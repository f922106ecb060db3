// The `llama3` binary: parses the subcommand, runs it, and turns every error into one line on
// stderr and a non-zero exit.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>

#include <fmt/format.h>

#include "apps/cli_options.h"
#include "apps/command.h"
#include "core/error.h"
#include "core/fault_signals.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "dist/mesh.h"
#include "dist/process_mesh.h"
#include "model/mesh_jobs.h"
#include "model/mesh_open.h"

namespace llama3::apps {

std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;
  return registry;
}

}  // namespace llama3::apps

int main(int argc, char** argv) {
  using namespace llama3::apps;
  llama3::install_fault_handlers();
  CLI::App app{"llama3: Llama 3 inference engine and demo"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "llama3 0.1");
  // A bad command line prints the error and then the (sub)command's options: what is accepted.
  app.failure_message(CLI::FailureMessage::help);
  // Options of the binary itself, accepted before the command or among its own options.
  bool quiet = false;
  const char* quiet_help = "no progress bars or lines (long loads, conversions, prefills, downloads)";
  app.add_flag("--quiet,-q", quiet, quiet_help);
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const CommandInfo& a, const CommandInfo& b) { return a.name < b.name; });
  std::function<int()> to_run;
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (const auto& command : registry) {
    CLI::App* sub = app.add_subcommand(command.name, command.description);
    sub->add_flag("--quiet,-q", quiet, quiet_help);
    runners.emplace_back(sub, command.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  llama3::Progress::set_quiet(quiet);
  // Under mpirun every rank runs this binary with the same command line, which names the mesh.
  // Rank 0 of each tensor group leads it: world rank 0 runs the command, and on a mesh of D > 1
  // data-parallel groups (the demo) each group's leader runs it on its share of the users; the
  // others open their leader's models' shares and run its passes (model/mesh_open.h). Any error
  // on any rank ends every rank (a peer may be waiting in a collective for this one).
  bool follower = false;
  try {
    if (llama3::dist::in_mpi_job()) {
      namespace dist = llama3::dist;
      follower = dist::world_rank() != 0;  // until the roles are known, errors are rank 0's to print
      const dist::MeshShape mesh = dist::parse_mesh(command_line_mesh().effective());
      if (mesh.ranks() != dist::world_size()) {
        // Every rank knows; rank 0 says it (MeshOpenError: the others wait for it to end the job).
        try {
          dist::check_world_fits(mesh, dist::world_size());
        } catch (const llama3::Error& e) {
          throw llama3::model::MeshOpenError(e.what());
        }
      }
      const bool splits_users = app.got_subcommand("demo");
      if (mesh.data > 1 && !splits_users) {
        throw llama3::model::MeshOpenError(fmt::format(
            "mesh {}: its {} data-parallel groups split the demo's users between them; other commands run on a "
            "tensor-parallel mesh ({}x1)",
            mesh.name(), mesh.data, mesh.tensor));
      }
      dist::set_job_mesh(mesh);
      dist::create_job_groups();
      const dist::MeshPlace place = dist::job_place();
      follower = place.tensor_rank != 0;
      // Ranks sharing a host share its cores (--threads on rank 0 overrides, for every rank).
      llama3::set_thread_count(dist::default_threads_per_rank());
      // The leaders of groups other than the first run the demo on their users; rank 0 prints
      // everyone's (apps/demo_command.cpp gathers them).
      if (!follower && place.data_group > 0 && std::freopen("/dev/null", "w", stdout) == nullptr) {
        llama3::fail("rank {}: cannot silence its output", dist::world_rank());
      }
    }
    if (follower) {
      const int code = llama3::model::follow_leader();
      llama3::dist::finish_job();
      return code;
    }
    int code = 2;
    for (auto& [sub, run] : runners) {
      if (sub->parsed()) {
        code = run();
        break;
      }
    }
    llama3::model::end_followers();
    llama3::dist::finish_job();
    return code;
  } catch (const CLI::ParseError& e) {
    if (llama3::dist::in_mpi_job()) llama3::dist::abort_job(app.exit(e));
    return app.exit(e);
  } catch (const llama3::model::MeshOpenError& e) {
    // Every rank knows; rank 0 says it and ends the job. A follower waits for that (its own
    // abort could kill rank 0 before it prints), and ends the job itself only if it never comes.
    std::fflush(stdout);
    if (follower) {
      try {
        llama3::dist::world().barrier(std::chrono::seconds(30));
      } catch (const std::exception&) {
      }
    } else {
      std::fprintf(stderr, "llama3: error: %s\n", e.what());
      std::fflush(stderr);
    }
    llama3::dist::abort_job(1);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    if (llama3::dist::in_mpi_job() && llama3::dist::world_rank() != 0) {
      std::fprintf(stderr, "llama3 (rank %d): error: %s\n", llama3::dist::world_rank(), e.what());
    } else {
      std::fprintf(stderr, "llama3: error: %s\n", e.what());
    }
    std::fflush(stderr);
    if (llama3::dist::in_mpi_job()) llama3::dist::abort_job(1);
    return 1;
  }
}
