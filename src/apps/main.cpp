// The `llama3` binary: parses the subcommand, runs it, and turns every error into one line on
// stderr and a non-zero exit.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>

#include "apps/command.h"
#include "core/error.h"
#include "core/fault_signals.h"
#include "core/progress.h"

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
  try {
    for (auto& [sub, run] : runners) {
      if (sub->parsed()) return run();
    }
    return 2;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "llama3: error: %s\n", e.what());
    return 1;
  }
}
