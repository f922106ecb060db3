#include "apps/tokenizer_location.h"

#include <cstdlib>

#include "core/error.h"

namespace llama3::apps {

namespace fs = std::filesystem;

fs::path resolve_tokenizer_path(const std::optional<fs::path>& explicit_path,
                                const std::optional<fs::path>& model_dir) {
  std::error_code ec;
  if (explicit_path) {
    check(fs::is_regular_file(*explicit_path, ec),
          "tokenizer file not found: {} (give a tokenizer.json or a tokenizer.model)",
          explicit_path->string());
    return *explicit_path;
  }
  if (model_dir) {
    for (const char* name : {"tokenizer.json", "tokenizer.model", "original/tokenizer.model"}) {
      const fs::path candidate = *model_dir / name;
      if (fs::is_regular_file(candidate, ec)) return candidate;
    }
  }
  if (const char* env = std::getenv("LLAMA3_TOKENIZER"); env && *env) {
    check(fs::is_regular_file(env, ec), "LLAMA3_TOKENIZER names a tokenizer file that does not exist: {}",
          env);
    return env;
  }
  const fs::path fallback = LLAMA3_DEFAULT_TOKENIZER;
  check(fs::is_regular_file(fallback, ec),
        "no tokenizer found{}: the default {} is missing; run scripts/setup.sh to fetch it, or "
        "pass --tokenizer PATH",
        model_dir ? " in " + model_dir->string() : std::string(), fallback.string());
  return fallback;
}

}  // namespace llama3::apps
