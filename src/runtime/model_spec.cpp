#include "runtime/model_spec.h"

namespace llama3::runtime {

model::ModelRequest model_request(const ModelSpec& m) {
  model::ModelRequest r;
  r.preset = m.preset;
  r.weights = m.weights;
  r.layers = m.layers;
  r.model_dir = m.model_dir;
  r.seed = m.seed;
  r.optimizations = m.optimizations;
  r.precision = m.precision;
  r.kv_cache = m.kv_cache;
  r.weight_cache = m.weight_cache;
  r.mesh = m.mesh;
  r.mesh_payload = m.mesh_payload;
  r.threads = m.threads;
  return r;
}

}  // namespace llama3::runtime
