#include "model/checkpoint_loader.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/parallel.h"
#include "io/pth_file.h"
#include "io/safetensors_file.h"
#include "io/safetensors_folder.h"
#include "model/gguf_checkpoint.h"
#include "model/matrix_convert.h"
#include "model/matrix_slice.h"
#include "model/tensor_names.h"
#include "model/vision_checkpoint.h"
#include "model/weight_builder.h"

namespace llama3::model {

namespace fs = std::filesystem;
using io::TensorInfo;

int64_t hf_row_of_meta_row(int64_t meta_row, int64_t head_dim) {
  const int64_t head = meta_row / head_dim;
  const int64_t r = meta_row % head_dim;  // Meta: pair i = r / 2, member j = r % 2
  return head * head_dim + (r % 2) * (head_dim / 2) + r / 2;
}

fs::path gguf_file_of(const fs::path& path) {
  if (fs::is_regular_file(path)) {
    check(path.extension() == ".gguf", "{} is a file but not a .gguf; a model is a folder or a .gguf file",
          path.string());
    return path;
  }
  check(fs::is_directory(path), "model folder {} does not exist", path.string());
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.is_regular_file() && e.path().extension() == ".gguf") found.push_back(e.path());
  }
  std::sort(found.begin(), found.end());
  check(!found.empty(), "{}: no .gguf file", path.string());
  std::vector<std::string> names;
  for (const auto& f : found) names.push_back(f.filename().string());
  check(found.size() == 1, "{}: {} .gguf files ({}); name one with --model_dir FILE.gguf", path.string(), found.size(),
        fmt::join(names, ", "));
  return found.front();
}

bool is_gguf_source(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path.extension() == ".gguf";
  if (!fs::is_directory(path, ec) || fs::exists(path / "params.json", ec) || fs::exists(path / "config.json", ec)) {
    return false;
  }
  for (const auto& e : fs::directory_iterator(path, ec)) {
    if (e.path().extension() == ".gguf") return true;
  }
  return false;
}

CheckpointFormat detect_checkpoint_format(const fs::path& path) {
  if (fs::is_regular_file(path)) return (gguf_file_of(path), CheckpointFormat::Gguf);
  check(fs::is_directory(path), "model folder {} does not exist", path.string());
  if (fs::exists(path / "params.json")) return CheckpointFormat::Meta;
  if (fs::exists(path / "config.json")) return CheckpointFormat::HuggingFace;
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.path().extension() == ".gguf") return CheckpointFormat::Gguf;
  }
  fail("{}: neither params.json (Meta), config.json (Hugging Face) nor a .gguf file found", path.string());
}

namespace {

// Meta splits these along dim 0 across model-parallel shards, wo/w2 along dim 1. A rank of a
// mesh builds only its share (shard_plan.h) of each matrix.
// `embed_rows`: the embedding table's rows in the file (Hugging Face's mllama has the image
// token's rows after the vocabulary; only the vocabulary's are read here).
void build_weights(const ModelConfig& c, ModelWeights& w, WeightBuilder& b, const TensorNames& n,
                   const PrecisionMap& p, int64_t embed_rows) {
  const ShardPlan& s = w.shard;
  const int64_t q_dim = c.n_heads * c.head_dim;
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  const Slice all_dim{0, c.dim};
  const bool hf = n.style == NameStyle::HuggingFace;
  if (c.tied_embeddings) {
    w.tok_embeddings = w.output = b.matrix(n.embed, c.vocab_size, c.dim, 0, p.lm_head, 0, s.vocab, all_dim);
  } else {
    w.tok_embeddings = b.matrix(n.embed, embed_rows, c.dim, 0, embedding_precision(), 0, s.vocab, all_dim);
    w.output = b.matrix(n.output, c.vocab_size, c.dim, 0, p.lm_head, 0, s.vocab, all_dim);
  }
  w.norm = b.vector(n.norm, c.dim);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    auto name = [&](LayerTensor t) { return n.layer(l, t); };
    L.wq = b.matrix(name(LayerTensor::Wq), q_dim, c.dim, 0, p.wqkv, hf ? c.n_heads : 0, s.q_rows, all_dim);
    L.wk = b.matrix(name(LayerTensor::Wk), kv_dim, c.dim, 0, p.wqkv, hf ? c.n_kv_heads : 0, s.kv_rows, all_dim);
    L.wv = b.matrix(name(LayerTensor::Wv), kv_dim, c.dim, 0, p.wqkv, 0, s.kv_rows, all_dim);
    L.wo = b.matrix(name(LayerTensor::Wo), c.dim, q_dim, 1, p.wo, 0, all_dim, s.q_rows);
    L.w1 = b.matrix(name(LayerTensor::W1), c.ffn_dim, c.dim, 0, p.ff1_3, 0, s.ffn, all_dim);
    L.w3 = b.matrix(name(LayerTensor::W3), c.ffn_dim, c.dim, 0, p.ff1_3, 0, s.ffn, all_dim);
    L.w2 = b.matrix(name(LayerTensor::W2), c.dim, c.ffn_dim, 1, p.ff2, 0, all_dim, s.ffn);
    L.attention_norm = b.vector(name(LayerTensor::AttentionNorm), c.dim);
    L.ffn_norm = b.vector(name(LayerTensor::FfnNorm), c.dim);
  }
}

std::vector<fs::path> meta_shard_files(const fs::path& dir) {
  std::vector<fs::path> files;
  const std::regex pattern(R"(consolidated\.(\d+)\.pth)");
  for (const auto& e : fs::directory_iterator(dir)) {
    if (std::regex_match(e.path().filename().string(), pattern)) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < files.size(); ++i) {
    check(files[i].filename() == fmt::format("consolidated.{:02}.pth", i),
          "{}: Meta shards must be consolidated.00.pth .. consolidated.{:02}.pth; found {}", dir.string(),
          files.size() - 1, files[i].filename().string());
  }
  return files;
}

}  // namespace

ModelConfig checkpoint_config(const fs::path& path) {
  if (detect_checkpoint_format(path) == CheckpointFormat::Gguf) return config_from_gguf(io::GgufFile(gguf_file_of(path)));
  return load_model_config(path);
}

LoadedCheckpoint load_checkpoint(const fs::path& dir, std::optional<int64_t> layers, const PrecisionMap& precision,
                                 Share share) {
  if (detect_checkpoint_format(dir) == CheckpointFormat::Gguf) {
    return load_gguf_checkpoint(gguf_file_of(dir), layers, precision, share);
  }
  LoadedCheckpoint out{load_model_config(dir), {}, detect_checkpoint_format(dir)};
  ModelConfig& c = out.config;
  // A multimodal checkpoint names its text tensors differently, whether or not --layers keeps a
  // cross-attention layer.
  const bool multimodal = c.has_vision();
  const std::vector<int64_t> fusion = c.cross_attention_before;
  if (layers) truncate_layers(c, *layers);
  ModelWeights& w = out.weights;
  w.shard = shard_plan(c, share);
  if (out.format == CheckpointFormat::HuggingFace) {
    auto folder = std::make_shared<io::SafetensorsFolder>(dir);
    w.keep_alive.push_back(folder);
    PartFinder raw = [folder, dir](const std::string& name) {
      const TensorInfo* t = folder->find(name);
      check(t != nullptr, "{}: checkpoint lacks tensor {}", dir.string(), name);
      return std::vector<const TensorInfo*>{t};
    };
    // Absent lm_head means tied even when config.json forgets to say so.
    const char* head = multimodal ? "language_model.lm_head.weight" : tensor_names(NameStyle::HuggingFace).output;
    if (!folder->find(head)) c.tied_embeddings = true;
    WeightBuilder b(w, multimodal ? multimodal_text_finder(raw, NameStyle::HuggingFace, fusion) : raw);
    build_weights(c, w, b, tensor_names(NameStyle::HuggingFace), precision,
                  multimodal ? c.vocab_size + 8 : c.vocab_size);
    if (c.has_vision()) {
      WeightBuilder vision(w, raw);
      load_vision_parts(c, w, vision, NameStyle::HuggingFace, precision);
    }
    out.shards = static_cast<int64_t>(folder->shard_count());
    return out;
  }
  // Meta: a repacked single file, or .pth shards merged here.
  std::vector<std::function<const TensorInfo*(const std::string&)>> shards;
  if (fs::exists(dir / "consolidated.safetensors")) {
    auto file = std::make_shared<io::SafetensorsFile>(dir / "consolidated.safetensors");
    w.keep_alive.push_back(file);
    shards.push_back([file](const std::string& name) { return file->find(name); });
  } else {
    const auto files = meta_shard_files(dir);
    check(!files.empty(), "{}: no consolidated.NN.pth (Meta) weights found", dir.string());
    for (const auto& f : files) {
      auto pth = std::make_shared<io::PthFile>(f);
      w.keep_alive.push_back(pth);
      shards.push_back([pth](const std::string& name) { return pth->find(name); });
    }
  }
  out.shards = static_cast<int64_t>(shards.size());
  check(!multimodal || shards.size() == 1,
        "{}: a Meta vision checkpoint in {} shards (only single-file ones, as the 11B's, are read)", dir.string(),
        shards.size());
  c.tied_embeddings =
      shards.front()(multimodal ? "text_model.output.weight" : tensor_names(NameStyle::Meta).output) == nullptr;
  PartFinder raw = [shards, dir](const std::string& name) {
    std::vector<const TensorInfo*> parts;
    for (size_t i = 0; i < shards.size(); ++i) {
      const TensorInfo* t = shards[i](name);
      check(t != nullptr, "{}: shard {} lacks tensor {}", dir.string(), i, name);
      parts.push_back(t);
    }
    return parts;
  };
  WeightBuilder b(w, multimodal ? multimodal_text_finder(raw, NameStyle::Meta, fusion) : raw);
  build_weights(c, w, b, tensor_names(NameStyle::Meta), precision, c.vocab_size);
  if (c.has_vision()) {
    WeightBuilder vision(w, raw);
    load_vision_parts(c, w, vision, NameStyle::Meta, precision);
  }
  return out;
}

}  // namespace llama3::model
