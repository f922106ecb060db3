#pragma once
// Random models written by tests/reference/make_model.py (Meta, Hugging Face and GGUF files of
// the same bf16 weights, plus the float64 reference's logits and greedy tokens), and runs of the
// `llama3 generate` CLI on them, for the end-to-end tests in reference_test.cpp.
// Header-only: tests/CMakeLists.txt compiles only *_test.cpp files of this folder.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "test_support.h"

namespace llama3::testing {

namespace fs = std::filesystem;

// What the float64 reference says about one prompt (see make_model.py for the file format).
struct ReferencePrompt {
  std::vector<int32_t> tokens;
  std::vector<std::vector<double>> logits;  // [position][vocab]; empty when stored "last only"
  std::vector<double> last_logits;          // [vocab] at the last prompt position
  std::vector<int32_t> top1;                // argmax at every prompt position
  std::vector<double> margins;              // top1 - top2 at every prompt position
  std::vector<int32_t> greedy;              // greedy continuation (full recomputation)
  std::vector<double> greedy_margins;       // top1 - top2 at each greedy step
  // The same answers with keys and values rounded to bf16 (prompts made with @kvbf16), with every
  // product's input rounded to int8 blocks (@actq8), and with the matrices rounded to bf16 (@bf16w).
  std::shared_ptr<const ReferencePrompt> kv_bf16, act_q8, bf16_weights;
};

struct ReferenceModel {
  fs::path dir;  // holds one sub-folder per checkpoint variant and expected.json
  std::vector<ReferencePrompt> prompts;
  fs::path folder(const std::string& variant) const { return dir / variant; }
};

// How to make one model: arguments of make_model.py besides --out.
struct ReferenceSpec {
  std::string name;                  // cache folder name
  std::string config_json;           // --config
  int seed = 0;                      // --seed
  std::vector<std::string> prompts;  // --prompt each
  std::vector<std::string> extra;    // further arguments (--variant ..., --greedy N, ...)
};

// One `llama3 generate` run.
struct EngineRun {
  std::vector<int32_t> prompt;
  std::vector<int32_t> generated;
  std::string stop_reason;
  std::vector<std::vector<float>> logits;  // every prompt position (logits_all), else one row
};

namespace detail {

inline const fs::path& reference_dir() {
  static const fs::path dir = fs::path(LLAMA3_SOURCE_DIR) / "tests" / "reference";
  return dir;
}

inline std::string make_model_command(const ReferenceSpec& spec, const fs::path& out) {
  std::string cmd = std::string(LLAMA3_PYTHON) + " " +
                    shell_quote((reference_dir() / "make_model.py").string()) +
                    " --config " + shell_quote(spec.config_json) +
                    " --seed " + std::to_string(spec.seed) + " --out " + shell_quote(out.string());
  for (const auto& p : spec.prompts) cmd += " --prompt " + shell_quote(p);
  for (const auto& e : spec.extra) cmd += " " + shell_quote(e);
  return cmd;
}

template <typename T>
std::vector<T> vec(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return {};
  return j.at(key).get<std::vector<T>>();
}

inline ReferencePrompt read_prompt(const nlohmann::json& p, std::vector<int32_t> tokens) {
  ReferencePrompt r;
  r.tokens = std::move(tokens);
  if (p.contains("logits")) r.logits = p.at("logits").get<std::vector<std::vector<double>>>();
  r.last_logits = vec<double>(p, "last_logits");
  r.top1 = vec<int32_t>(p, "top1");
  r.margins = vec<double>(p, "margins");
  r.greedy = vec<int32_t>(p, "greedy");
  r.greedy_margins = vec<double>(p, "greedy_margins");
  auto variant = [&](const char* key) -> std::shared_ptr<const ReferencePrompt> {
    if (!p.contains(key)) return nullptr;
    return std::make_shared<ReferencePrompt>(read_prompt(p.at(key), r.tokens));
  };
  r.kv_bf16 = variant("kv_bf16");
  r.act_q8 = variant("act_q8");
  r.bf16_weights = variant("bf16_weights");
  return r;
}

inline ReferenceModel read_reference_model(const fs::path& dir) {
  const std::string text = read_text(dir / "expected.json");
  if (text.empty()) throw std::runtime_error("missing or empty " + (dir / "expected.json").string());
  const auto j = nlohmann::json::parse(text);
  ReferenceModel m;
  m.dir = dir;
  for (const auto& p : j.at("prompts")) m.prompts.push_back(read_prompt(p, vec<int32_t>(p, "tokens")));
  return m;
}

}  // namespace detail

// Runs make_model.py into `out` (created) and reads expected.json. Throws std::runtime_error
// with the script's stderr when it fails.
inline ReferenceModel make_reference_model(const ReferenceSpec& spec, const fs::path& out) {
  fs::create_directories(out);
  const CommandResult r = run_command(detail::make_model_command(spec, out));
  if (r.exit_code != 0) {
    throw std::runtime_error(fmt::format("make_model.py failed (exit {}) for {}:\n{}", r.exit_code,
                                         spec.name, r.err));
  }
  return detail::read_reference_model(out);
}

// The same, but into a folder of the build tree named after the spec and a hash of its
// arguments and of the Python sources: every test process (ctest runs one per test) reuses what
// the first one generated, while concurrent ones wait on a lock file.
inline ReferenceModel cached_reference_model(const ReferenceSpec& spec) {
  uint64_t h = fnv1a(detail::make_model_command(spec, "OUT"));
  for (const char* source :
       {"make_model.py", "model_files.py", "llama_reference.py", "gguf_file.py", "ggml_blocks.py"}) {
    h = fnv1a(read_text(detail::reference_dir() / source), h);
  }
  const fs::path root = fs::path(LLAMA3_BINARY_DIR) / "test-tmp" / "reference-models";
  const fs::path dir = root / fmt::format("{}-{:016x}", spec.name, h);
  fs::create_directories(root);
  // One process generates while concurrent test processes (ctest -j) wait for it.
  const FileLock lock(root / (spec.name + ".lock"));
  if (fs::exists(dir / "expected.json")) return detail::read_reference_model(dir);

  const fs::path partial = root / fmt::format("{}.partial-{}", spec.name, ::getpid());
  fs::remove_all(partial);
  make_reference_model(spec, partial);
  fs::rename(partial, dir);
  // Drop what older versions of the scripts (or an interrupted run) left under this name.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string n = e.path().filename().string();
    const bool stale = n.rfind(spec.name + "-", 0) == 0 || n.rfind(spec.name + ".partial-", 0) == 0;
    if (e.path() != dir && stale) fs::remove_all(e.path(), ec);
  }
  return detail::read_reference_model(dir);
}

// "1,2,3"
inline std::string join_tokens(const std::vector<int32_t>& tokens) {
  std::string s;
  for (size_t i = 0; i < tokens.size(); ++i) s += (i ? "," : "") + std::to_string(tokens[i]);
  return s;
}

// Runs the CLI with the given model folder and prompt, asking for max_generated tokens and the
// logits (at every prompt position when logits_all). extra_flags are appended verbatim (e.g.
// "--kv_cache f32"); the weights run in bf16 (--optimizations bf16: the checkpoint's own values)
// unless extra_flags names another mode. With dir_variable ("LLAMA_DIR" or "HF_MODEL") the folder is given through
// that environment variable instead of --model_dir. `launcher` goes before the command (e.g. an
// mpirun). Throws std::runtime_error with the CLI's stderr when it fails.
inline EngineRun run_engine(const fs::path& model_dir, const std::vector<int32_t>& tokens, int max_generated,
                            bool logits_all, const std::string& extra_flags,
                            const std::string& dir_variable = "", const std::string& launcher = "") {
  TempDir tmp("engine-run");
  const fs::path logits_file = tmp / "logits.json";
  const std::string dir = shell_quote(model_dir.string());
  const std::string env =
      dir_variable.empty() ? "" : "env -u LLAMA_DIR -u HF_MODEL " + dir_variable + "=" + dir + " ";
  const std::string cmd = env + launcher + cli() + " generate" + (dir_variable.empty() ? " --model_dir " + dir : "") +
                          " --tokens " + shell_quote(join_tokens(tokens)) +
                          " --max_generated_tokens " + std::to_string(max_generated) +
                          " --logits_out " + shell_quote(logits_file.string()) +
                          (logits_all ? " --logits_all true" : "") +
                          (extra_flags.find("--optimizations") == std::string::npos ? " --optimizations bf16 " : " ") +
                          extra_flags;
  const CommandResult r = run_command(cmd);
  if (r.exit_code != 0) {
    throw std::runtime_error(fmt::format("llama3 generate failed (exit {}) on {}:\n{}", r.exit_code,
                                         model_dir.string(), r.err));
  }
  EngineRun run;
  try {
    const auto out = nlohmann::json::parse(r.out);
    run.prompt = out.at("prompt").get<std::vector<int32_t>>();
    run.generated = out.at("generated").get<std::vector<int32_t>>();
    if (out.contains("stop_reason")) run.stop_reason = out.at("stop_reason").get<std::string>();
    const auto logits = nlohmann::json::parse(read_text(logits_file));
    if (logits_all) {
      run.logits = logits.get<std::vector<std::vector<float>>>();
    } else {
      run.logits.push_back(logits.get<std::vector<float>>());
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("bad output of llama3 generate on {}: {}\nstdout: {}",
                                         model_dir.string(), e.what(), r.out.substr(0, 500)));
  }
  return run;
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// max_i |got[i] - want[i]| (infinite when a value is NaN); throws when the sizes differ.
inline double max_abs_error(const std::vector<float>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) {
    throw std::runtime_error(fmt::format("logits of size {} compared with {}", got.size(), want.size()));
  }
  double m = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(static_cast<double>(got[i]) - want[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

inline double max_abs_error(const std::vector<float>& got, const std::vector<float>& want) {
  return max_abs_error(got, std::vector<double>(want.begin(), want.end()));
}

// Index of the largest element (the first one on ties, like the engine's argmax).
inline int32_t argmax(const std::vector<float>& row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

}  // namespace llama3::testing
