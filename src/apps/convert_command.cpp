// `llama3 convert OUT`: writes the model a command would run (random weights of a preset, or a
// loaded checkpoint of any format) as
//  - a Hugging Face folder (config.json + model.safetensors, bf16), the default; or
//  - a GGUF file llama.cpp loads (`--to gguf OUT.gguf --type bf16|f16|q8_0|q4_0`), with the
//    tokenizer (--tokenizer, the checkpoint's, or the built-in one).
// Used to produce real-format checkpoints of the true shapes here, where no real weights
// exist, and the same weights for both engines of the side-by-side benchmark.
#include <fmt/core.h>

#include <memory>

#include "apps/cli_options.h"
#include "apps/command.h"
#include "runtime/tokenizer_location.h"
#include "core/error.h"
#include "core/timer.h"
#include "model/checkpoint_writer.h"
#include "model/gguf_model_writer.h"
#include "model/model_source.h"

namespace llama3::apps {
namespace {

struct ConvertOptions {
  ModelOptions model;
  std::string out;
  std::string to = "hf";
  std::string type = "bf16";
  std::optional<std::string> tokenizer;
};

GgmlType gguf_type(const std::string& t) {
  if (t == "bf16") return GgmlType::BF16;
  if (t == "f16") return GgmlType::F16;
  if (t == "f32") return GgmlType::F32;
  if (t == "q8_0") return GgmlType::Q8_0;
  check(t == "q4_0", "--type {} is not one of bf16, f16, f32, q8_0, q4_0", t);
  return GgmlType::Q4_0;
}

model::GgufVocab gguf_vocab(const tokenizer::Tokenizer& tok) {
  const tokenizer::OwnedVocabArrays v = tok.to_vocab();
  model::GgufVocab out;
  out.tokens = v.tokens;
  out.token_types = v.token_types;
  out.merges = v.merges;
  out.bos_id = v.bos_id.value_or(tok.bos_id());
  out.eos_id = v.eos_id.value_or(tok.eos_id());
  if (!v.chat_template.empty()) out.chat_template = v.chat_template;
  return out;
}

int run_convert(const ConvertOptions& o) {
  o.model.apply_threads();
  ModelOptions options = o.model;
  // The source's own values: no requantization on the way in (a Q4_0 GGUF written as q4_0
  // stays bit-identical), and no weight cache for a one-off conversion.
  check(!options.optimizations && !options.precision,
        "convert writes the weights as loaded; choose the output's format with --type, not --optimizations/--precision");
  options.optimizations = "native";
  options.weight_cache = "off";
  // The weights and the writer's buffers (one tensor at a time).
  if (!options.settle_memory([](const model::ModelPlan&) { return runtime::RunShape{}; })) return 0;
  const model::OpenedModel opened = model::open_model(options.request());
  const model::ModelConfig& c = opened.model->config();
  const Timer timer;
  if (o.to == "hf") {
    check(o.type == "bf16", "--to hf writes bf16; --type {} is for --to gguf", o.type);
    if (opened.format == "gguf") {
      // Matrices of a GGUF may be packed blocks: reload them as bf16 for the safetensors writer.
      options.optimizations = "bf16";
      const model::OpenedModel bf16 = model::open_model(options.request());
      model::write_hf_folder(c, bf16.model->weights(), o.out);
    } else {
      model::write_hf_folder(c, opened.model->weights(), o.out);
    }
    fmt::print("wrote {} ({} weights, {} layers) as a Hugging Face folder {} in {:.2f} s\n", c.name, opened.weights,
               c.n_layers, o.out, timer.seconds());
    return 0;
  }
  check(o.to == "gguf", "--to {} is not one of hf, gguf", o.to);
  const auto tok = runtime::load_tokenizer(o.tokenizer ? std::optional<std::filesystem::path>(*o.tokenizer) : std::nullopt,
                                  opened.dir);
  model::write_gguf_model(c, opened.model->weights(), gguf_vocab(tok), gguf_type(o.type), o.out,
                          fmt::format("{} ({} weights)", c.name, opened.weights));
  fmt::print("wrote {} ({} weights, {} layers) as GGUF {} ({}) in {:.2f} s\n", c.name, opened.weights, c.n_layers,
             o.out, o.type, timer.seconds());
  return 0;
}

const CommandRegistrar kRegistrar{
    "convert", "write the model (random or loaded) as a Hugging Face folder or a GGUF file", [](CLI::App& app) {
      auto o = std::make_shared<ConvertOptions>();
      o->model.add_to(app);
      app.add_option("OUT", o->out, "output folder (--to hf) or .gguf file (--to gguf)")->required();
      app.add_option("--to", o->to, "hf | gguf")->check(CLI::IsMember({"hf", "gguf"}))->capture_default_str();
      app.add_option("--type", o->type, "GGUF tensor type: bf16 | f16 | f32 | q8_0 | q4_0")
          ->check(CLI::IsMember({"bf16", "f16", "f32", "q8_0", "q4_0"}))
          ->capture_default_str();
      app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or tokenizer.model to embed (GGUF)");
      return [o] { return run_convert(*o); };
    }};

}  // namespace
}  // namespace llama3::apps
