#include "model/model_factory.h"

#include <fmt/core.h>

#include "core/error.h"
#include "vision/image_preprocess.h"
#include "core/timer.h"
#include "kernels/quant_pack.h"
#include "dist/mesh.h"
#include "model/checkpoint_loader.h"
#include "model/matrix_convert.h"
#include "model/mesh_open.h"
#include "model/model_source.h"
#include "model/random_weights.h"
#include "model/weight_cache.h"

namespace llama3::model {

namespace fs = std::filesystem;

namespace {

const char* format_name(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::Meta: return "meta";
    case CheckpointFormat::HuggingFace: return "huggingface";
    case CheckpointFormat::Gguf: return "gguf";
  }
  return "?";
}

// Worth caching: something was quantized or repacked, or the weights were generated. A bf16
// checkpoint run in bf16 is used in place (or with q/k rows reordered), so a cache would only
// duplicate it on disk.
bool worth_caching(const ModelWeights& w, bool random) {
  if (random) return true;
  bool packed = w.tok_embeddings.format != kernels::WeightFormat::BF16 ||
                w.output.format != kernels::WeightFormat::BF16;
  for (const auto& L : w.layers) {
    for (const Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w1, &L.w3, &L.w2}) {
      packed = packed || m->format != kernels::WeightFormat::BF16;
    }
  }
  return packed;
}

LoadedCheckpoint load_source(const std::optional<fs::path>& dir, const ModelRequest& r, const PrecisionMap& p,
                             Share share) {
  if (dir) return load_checkpoint(*dir, r.layers, p, share);
  ModelConfig config = preset(r.preset);
  if (r.layers) truncate_layers(config, *r.layers);
  LoadedCheckpoint out{config, random_weights(config, r.seed, p, shard_plan(config, share)),
                       CheckpointFormat::HuggingFace};
  return out;
}

}  // namespace

PrecisionMap requested_precision(const ModelRequest& r, bool gguf_source) {
  PrecisionMap p = make_precision(r.optimizations.value_or(gguf_source ? "native" : "performance"), r.precision);
  const bool map_sets_kv = r.precision && r.precision->find("kv_cache") != std::string::npos;
  if (r.kv_cache) {
    const auto parsed = kernels::kv_dtype_from_name(*r.kv_cache);
    check(parsed.has_value(), "--kv_cache {} is not one of bf16, f32, q8", *r.kv_cache);
    const kernels::KvDType kv = *parsed;
    check(!map_sets_kv || kv == p.kv_cache, "--kv_cache {} contradicts --precision's kv_cache", *r.kv_cache);
    p.kv_cache = kv;
  }
  return p;
}

namespace {

// A matrix's bytes in its format (packed blocks as the kernels lay them out); "native" counted
// as bf16 (a GGUF's own blocks are no larger).
size_t matrix_bytes(const MatrixPrecision& p, int64_t rows, int64_t cols) {
  if (p.native || p.format == kernels::WeightFormat::BF16) return static_cast<size_t>(rows * cols) * 2;
  return kernels::packed_bytes(p.format, rows, cols);
}

}  // namespace

size_t estimated_weight_bytes(const ModelConfig& c, const PrecisionMap& p) {
  return estimated_weight_bytes(c, p, shard_plan(c, 0, 1));
}

size_t estimated_weight_bytes(const ModelConfig& c, const PrecisionMap& p, const ShardPlan& s) {
  const int64_t q = s.q_rows.size, kv = s.kv_rows.size, f = s.ffn.size;
  const size_t layer = matrix_bytes(p.wqkv, q, c.dim) + 2 * matrix_bytes(p.wqkv, kv, c.dim) +
                       matrix_bytes(p.wo, c.dim, q) + 2 * matrix_bytes(p.ff1_3, f, c.dim) +
                       matrix_bytes(p.ff2, c.dim, f);
  const size_t head = matrix_bytes(p.lm_head, s.vocab.size, c.dim);
  const size_t embedding = c.tied_embeddings ? 0 : static_cast<size_t>(s.vocab.size * c.dim) * 2;
  // A vision model's cross-attention layers (the self-attention layer's matrices, on one rank)
  // and image encoder (bf16 matrices; fp32 embeddings, the tile ones per canvas).
  size_t vision = 0;
  if (c.has_vision()) {
    const vision::VisionConfig& v = c.vision;
    const int64_t d = v.width, layers = v.layers + v.global_layers;
    const int64_t canvases = static_cast<int64_t>(vision::supported_canvases(v.max_tiles).size());
    const size_t matrix_values = static_cast<size_t>(layers * (4 * d * d + 2 * d * v.ffn_dim) + v.features() * c.dim);
    vision = static_cast<size_t>(c.cross_layers()) * layer +
             (quantized_vision_encoder(p) ? matrix_values * 34 / 32 : matrix_values * 2) +
             static_cast<size_t>(canvases * v.max_tiles * (v.tokens_per_tile() + 2) * d * 4 +
                                 v.tokens_per_tile() * d * 4 + c.extra_embeddings * c.dim * 4);
  }
  return static_cast<size_t>(c.n_layers) * layer + head + embedding + vision;
}

ModelPlan plan_model(const ModelRequest& request) {
  if (request.weights) {
    check(*request.weights == "random" || *request.weights == "instruct" || *request.weights == "general",
          "--weights {} is not one of: random, instruct, general", *request.weights);
  }
  check(request.mesh_payload == "fp32" || request.mesh_payload == "bf16", "--mesh_payload {} is not one of: fp32, bf16",
        request.mesh_payload);
  ModelPlan plan;
  if (request.weights != "random") plan.dir = resolve_model_dir(request.model_dir);
  check(plan.dir || !request.weights || *request.weights == "random",
        "--weights {} needs a checkpoint: set LLAMA_DIR (Meta folder), HF_MODEL (Hugging Face folder or "
        "repo id) or --model_dir (a folder or a .gguf file); or use --weights random",
        request.weights.value_or(""));
  const bool gguf = plan.dir && detect_checkpoint_format(*plan.dir) == CheckpointFormat::Gguf;
  plan.precision = requested_precision(request, gguf);
  plan.config = plan.dir ? checkpoint_config(*plan.dir) : preset(request.preset);
  if (request.layers) truncate_layers(plan.config, *request.layers);
  check(!plan.config.has_vision() || dist::parse_mesh(request.mesh).ranks() == 1,
        "{} is a vision model: it runs on one rank (--mesh {} asks for {})", plan.config.name, request.mesh,
        dist::parse_mesh(request.mesh).ranks());
  // Throws here, before anything loads, when the model does not split over the mesh.
  plan.share = shard_plan(plan.config, 0, dist::parse_mesh(request.mesh).tensor);
  plan.kv_config = shard_kv_config(plan.config, plan.share);
  plan.weight_bytes = estimated_weight_bytes(plan.config, plan.precision, plan.share);
  return plan;
}

OpenedModel open_model(const ModelRequest& request) {
  if (dist::parse_mesh(request.mesh).ranks() > 1) return open_on_mesh(request);
  return open_local(request, plan_model(request));
}

OpenedModel open_local(const ModelRequest& request, const ModelPlan& plan, Share share, dist::Communicator* group) {
  OpenedModel out;
  const Timer timer;
  const std::optional<fs::path>& dir = plan.dir;
  out.precision = plan.precision;
  out.weights = dir ? request.weights.value_or("instruct") : "random";
  out.dir = dir;

  std::optional<LoadedCheckpoint> loaded;
  CacheLocation where;
  // Vision models are not cached yet: the cache file holds the text model's matrices only.
  const bool use_cache = request.weight_cache && !plan.config.has_vision();
  if (use_cache) {
    where = cache_location({dir, request.preset, request.seed, request.layers, request.mesh, share}, out.precision);
    for (const fs::path& path : {where.path, where.fallback_path}) {
      std::string warning;
      loaded = read_weight_cache(path, where.key, warning);
      if (!warning.empty()) fmt::print(stderr, "warning: {}\n", warning);
      if (loaded) {
        out.cache = "loaded " + path.string();
        break;
      }
    }
  } else {
    out.cache = request.weight_cache ? "off (vision models are not cached)" : "off";
  }
  if (!loaded) {
    {
      // A rank of a mesh converts about 1/T of the weights.
      const ConversionProgress progress(fmt::format("converting weights ({})", out.precision.mode),
                                        static_cast<double>(plan.config.parameter_count()) / share.ranks);
      loaded = load_source(dir, request, out.precision, share);
    }
    if (!use_cache) {
      // nothing to write
    } else if (!worth_caching(loaded->weights, !dir)) {
      out.cache = "not needed";
    } else {
      std::string error;
      for (const fs::path& path : {where.path, where.fallback_path}) {
        try {
          write_weight_cache(path, where.key, *loaded);
          out.cache = "written " + path.string();
          error.clear();
          break;
        } catch (const std::exception& e) {
          error = e.what();
        }
      }
      if (!error.empty()) {
        fmt::print(stderr, "warning: could not write the weight cache ({}); running without it\n", error);
        out.cache = "not written: " + error;
      }
    }
  }
  out.format = dir ? format_name(loaded->format) : "random";
  check(loaded->weights.shard.rank == share.rank && loaded->weights.shard.ranks == share.ranks,
        "weights of rank {} of {} where rank {} of {} was asked for", loaded->weights.shard.rank,
        loaded->weights.shard.ranks, share.rank, share.ranks);
  out.model = std::make_unique<LlamaModel>(std::move(loaded->config), std::move(loaded->weights), group);
  out.model->set_bf16_payload(request.mesh_payload == "bf16");
  out.load_seconds = timer.seconds();
  return out;
}

}  // namespace llama3::model
