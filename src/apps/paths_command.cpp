// `llama3 paths`: where this binary finds its data files and keeps its caches (an installed copy
// uses <prefix>/share/llama3, a build tree its source tree).
#include <fmt/core.h>

#include <memory>

#include "apps/command.h"
#include "runtime/data_files.h"
#include "runtime/tokenizer_location.h"

namespace llama3::apps {
namespace {

const CommandRegistrar kRegistrar{"paths", "print where data files (tokenizer, demo prompts) and caches are found",
                                  [](CLI::App&) {
                                    return [] {
                                      fmt::print("data: {}\n", runtime::data_dir().string());
                                      fmt::print("tokenizer: {}\n",
                                                 runtime::resolve_tokenizer_path(std::nullopt, std::nullopt).string());
                                      fmt::print("demo prompts: {}\n",
                                                 runtime::data_file("demo/prompts").string());
                                      return 0;
                                    };
                                  }};

}  // namespace
}  // namespace llama3::apps
