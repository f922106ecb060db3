#pragma once
// The public API's model options (llama3::ModelSpec) as the model factory takes them: the one
// place that maps the fields, used by the engine and by the CLI's model options.
#include "llama3/engine.h"
#include "model/model_factory.h"

namespace llama3::runtime {

model::ModelRequest model_request(const ModelSpec& spec);

}  // namespace llama3::runtime
