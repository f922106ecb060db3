// `llama3 repack META_DIR OUT_DIR`: merges a Meta checkpoint's model-parallel shards once
// (the original demo ships such a script for 70B) into OUT_DIR/consolidated.safetensors with
// Meta's tensor names, next to a copy of params.json (and tokenizer.model if present). Loading
// OUT_DIR then maps the merged bf16 tensors in place, skipping the merge.
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "apps/command.h"
#include "core/error.h"
#include "core/timer.h"
#include "model/checkpoint_loader.h"
#include "model/checkpoint_writer.h"

namespace llama3::apps {
namespace {

namespace fs = std::filesystem;

int run_repack(const fs::path& in_dir, const fs::path& out_dir) {
  const Timer timer;
  check(model::detect_checkpoint_format(in_dir) == model::CheckpointFormat::Meta,
        "repack: {} is not a Meta checkpoint (no params.json)", in_dir.string());
  check(fs::weakly_canonical(in_dir) != fs::weakly_canonical(out_dir), "repack: OUT_DIR must differ from META_DIR");
  const model::LoadedCheckpoint ckpt = model::load_checkpoint(in_dir);
  model::write_meta_safetensors(ckpt.config, ckpt.weights, out_dir,
                                {{"format", "llama3-repacked-meta"}, {"source_shards", std::to_string(ckpt.shards)}});
  for (const char* name : {"params.json", "tokenizer.model"}) {
    if (fs::exists(in_dir / name)) fs::copy_file(in_dir / name, out_dir / name, fs::copy_options::overwrite_existing);
  }
  fmt::print("repacked {} shard(s) of {} into {} in {:.2f} s\n", ckpt.shards, ckpt.config.name,
             (out_dir / "consolidated.safetensors").string(), timer.seconds());
  return 0;
}

const CommandRegistrar kRegistrar{"repack", "merge a Meta checkpoint's shards once into one mapped file",
                                  [](CLI::App& app) {
                                    auto in = std::make_shared<std::string>();
                                    auto out = std::make_shared<std::string>();
                                    app.add_option("META_DIR", *in, "Meta checkpoint folder")->required();
                                    app.add_option("OUT_DIR", *out, "output folder")->required();
                                    return [in, out] { return run_repack(*in, *out); };
                                  }};

}  // namespace
}  // namespace llama3::apps
