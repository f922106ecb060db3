#include "model/model_factory.h"

#include "core/error.h"
#include "core/timer.h"
#include "model/checkpoint_loader.h"
#include "model/model_source.h"
#include "model/random_weights.h"

namespace llama3::model {

OpenedModel open_model(const ModelRequest& request) {
  OpenedModel out;
  const Timer timer;
  if (request.weights) {
    check(*request.weights == "random" || *request.weights == "instruct" || *request.weights == "general",
          "--weights {} is not one of: random, instruct, general", *request.weights);
  }
  std::optional<std::filesystem::path> dir;
  if (request.weights != "random") dir = resolve_model_dir(request.model_dir);
  if (!dir) {
    check(!request.weights || *request.weights == "random",
          "--weights {} needs a checkpoint: set LLAMA_DIR (Meta folder), HF_MODEL (Hugging Face folder or "
          "repo id) or --model_dir; or use --weights random",
          *request.weights);
    ModelConfig config = preset(request.preset);
    if (request.layers) truncate_layers(config, *request.layers);
    out.model = std::make_unique<LlamaModel>(config, random_weights(config, request.seed));
    out.weights = "random";
    out.format = "random";
  } else {
    LoadedCheckpoint ckpt = load_checkpoint(*dir, request.layers);
    out.format = ckpt.format == CheckpointFormat::Meta ? "meta" : "huggingface";
    out.model = std::make_unique<LlamaModel>(std::move(ckpt.config), std::move(ckpt.weights));
    out.weights = request.weights.value_or("instruct");
    out.dir = dir;
  }
  out.load_seconds = timer.seconds();
  return out;
}

}  // namespace llama3::model
