#pragma once
// Subcommands of the `llama3` binary register themselves here: each command file defines one
// static CommandRegistrar, so adding a command touches no other file.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace llama3::apps {

// Declares the command's options on `app` (binding them to state it owns) and returns the
// function that runs the command once the command line is parsed. The int is the exit code.
using CommandSetup = std::function<std::function<int()>(CLI::App& app)>;

struct CommandInfo {
  std::string name;
  std::string description;
  CommandSetup setup;
};

std::vector<CommandInfo>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string description, CommandSetup setup) {
    command_registry().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace llama3::apps
