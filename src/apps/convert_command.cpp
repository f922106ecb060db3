// `llama3 convert OUT_DIR`: writes the model a command would run (random weights of a preset,
// or a loaded checkpoint) as a Hugging Face folder: config.json + model.safetensors. Used to
// produce real-format checkpoints of the true shapes here, where no real weights exist.
#include <fmt/core.h>

#include <memory>

#include "apps/cli_options.h"
#include "apps/command.h"
#include "core/timer.h"
#include "model/checkpoint_writer.h"

namespace llama3::apps {
namespace {

struct ConvertOptions {
  ModelOptions model;
  std::string out_dir;
};

int run_convert(const ConvertOptions& o) {
  o.model.apply_threads();
  const model::OpenedModel opened = model::open_model(o.model.request());
  const Timer timer;
  model::write_hf_folder(opened.model->config(), opened.model->weights(), o.out_dir);
  fmt::print("wrote {} ({} weights, {} layers) as a Hugging Face folder {} in {:.2f} s\n",
             opened.model->config().name, opened.weights, opened.model->config().n_layers, o.out_dir, timer.seconds());
  return 0;
}

const CommandRegistrar kRegistrar{"convert", "write the model (random or loaded) as a Hugging Face folder",
                                  [](CLI::App& app) {
                                    auto o = std::make_shared<ConvertOptions>();
                                    o->model.add_to(app);
                                    app.add_option("OUT_DIR", o->out_dir, "output folder")->required();
                                    return [o] { return run_convert(*o); };
                                  }};

}  // namespace
}  // namespace llama3::apps
