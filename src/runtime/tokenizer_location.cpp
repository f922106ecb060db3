#include "runtime/tokenizer_location.h"

#include <cstdlib>

#include "core/error.h"
#include "model/checkpoint_loader.h"
#include "runtime/data_files.h"

namespace llama3::runtime {

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
  const fs::path fallback = data_file("tokenizer/tokenizer.json");
  check(fs::is_regular_file(fallback, ec),
        "no tokenizer found{}: the default {} is missing; run scripts/setup.sh to fetch it, or "
        "pass --tokenizer PATH",
        model_dir ? " in " + model_dir->string() : std::string(), fallback.string());
  return fallback;
}

tokenizer::VocabArrays gguf_vocab_arrays(const io::GgufFile& f) {
  tokenizer::VocabArrays v;
  v.model = f.get_string("tokenizer.ggml.model");
  v.pre = f.find_string("tokenizer.ggml.pre").value_or("");
  v.tokens = f.get_string_array("tokenizer.ggml.tokens");
  for (int64_t t : f.get_int_array("tokenizer.ggml.token_type")) {
    check(t >= INT32_MIN && t <= INT32_MAX, "{}: tokenizer.ggml.token_type value {} out of range", f.path().string(), t);
    v.token_types.push_back(static_cast<int32_t>(t));
  }
  v.merges = f.get_string_array("tokenizer.ggml.merges");
  auto id = [&](const char* key) -> std::optional<int32_t> {
    const auto value = f.find_int(key);
    if (!value) return std::nullopt;
    check(*value >= 0 && *value <= INT32_MAX, "{}: {} = {} is not a token id", f.path().string(), key, *value);
    return static_cast<int32_t>(*value);
  };
  v.bos_id = id("tokenizer.ggml.bos_token_id");
  v.eos_id = id("tokenizer.ggml.eos_token_id");
  v.pad_id = id("tokenizer.ggml.padding_token_id");
  v.chat_template = f.find_string("tokenizer.chat_template").value_or("");
  return v;
}

tokenizer::Tokenizer load_tokenizer(const std::optional<fs::path>& explicit_path, const std::optional<fs::path>& model_dir) {
  if (!explicit_path && model_dir && model::is_gguf_source(*model_dir)) {
    const io::GgufFile file(model::gguf_file_of(*model_dir));
    if (file.has("tokenizer.ggml.tokens")) return tokenizer::Tokenizer::from_vocab(gguf_vocab_arrays(file));
  }
  return tokenizer::Tokenizer::load(resolve_tokenizer_path(explicit_path, model_dir));
}

}  // namespace llama3::runtime
