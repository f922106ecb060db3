#include "model/weight_cache.h"

#include <fmt/core.h>

#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/user_cache.h"
#include "io/gguf_file.h"
#include "io/gguf_writer.h"
#include "kernels/quant_pack.h"
#include "model/checkpoint_identity.h"

namespace llama3::model {

namespace fs = std::filesystem;
using nlohmann::json;
using kernels::WeightFormat;

namespace {

// Bumped whenever what the cache holds or how it is laid out changes: old caches are rebuilt.
constexpr int kCacheVersion = 2;  // 2: cross_attention_before replaces a count
constexpr uint32_t kCacheAlignment = 64;
constexpr const char* kKeyKey = "llama3.cache.key";
constexpr const char* kConfigKey = "llama3.cache.config";
constexpr const char* kMatricesKey = "llama3.cache.matrices";
constexpr const char* kFormatKey = "llama3.cache.source_format";

json source_identity(const CacheSource& s) {
  if (!s.checkpoint) return {{"random", s.preset}, {"seed", s.seed}};
  json files = json::array();
  for (const CheckpointFile& f : checkpoint_files(*s.checkpoint)) {
    files.push_back({{"name", f.name}, {"size", f.size}, {"mtime_ns", f.mtime_ns}, {"head_fnv1a", f.head_hash}});
  }
  return {{"path", fs::absolute(*s.checkpoint).lexically_normal().string()}, {"files", files}};
}

std::string mode_folder(const PrecisionMap& p) {
  const std::string base = p.mode.substr(0, p.mode.find('+'));
  if (base == p.mode) return base;
  const std::string matrices = p.to_json();
  return fmt::format("custom-{:08x}", fnv1a(matrices.data(), matrices.size()) & 0xffffffffu);
}

std::string file_name(const std::string& stem, const std::optional<int64_t>& layers) {
  return layers ? fmt::format("{}-layers{}.gguf", stem, *layers) : stem + ".gguf";
}

json config_to_json(const ModelConfig& c) {
  return {{"name", c.name}, {"dim", c.dim}, {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
          {"n_kv_heads", c.n_kv_heads}, {"head_dim", c.head_dim}, {"ffn_dim", c.ffn_dim},
          {"vocab_size", c.vocab_size}, {"norm_eps", c.norm_eps}, {"rope_theta", c.rope_theta},
          {"rope_scaling", {c.rope_scaling.enabled, c.rope_scaling.factor, c.rope_scaling.low_freq_factor,
                            c.rope_scaling.high_freq_factor, c.rope_scaling.original_max_position}},
          {"rope_freq_divisors", c.rope_freq_divisors}, {"tied_embeddings", c.tied_embeddings},
          {"max_seq_len", c.max_seq_len}, {"cross_attention_before", c.cross_attention_before}};
}

ModelConfig config_from_json(const json& j) {
  ModelConfig c;
  c.name = j.at("name").get<std::string>();
  c.dim = j.at("dim").get<int64_t>();
  c.n_layers = j.at("n_layers").get<int64_t>();
  c.n_heads = j.at("n_heads").get<int64_t>();
  c.n_kv_heads = j.at("n_kv_heads").get<int64_t>();
  c.head_dim = j.at("head_dim").get<int64_t>();
  c.ffn_dim = j.at("ffn_dim").get<int64_t>();
  c.vocab_size = j.at("vocab_size").get<int64_t>();
  c.norm_eps = j.at("norm_eps").get<double>();
  c.rope_theta = j.at("rope_theta").get<double>();
  const json& rs = j.at("rope_scaling");
  c.rope_scaling = {rs.at(0).get<bool>(), rs.at(1).get<double>(), rs.at(2).get<double>(), rs.at(3).get<double>(),
                    rs.at(4).get<int64_t>()};
  c.rope_freq_divisors = j.at("rope_freq_divisors").get<std::vector<double>>();
  c.tied_embeddings = j.at("tied_embeddings").get<bool>();
  c.max_seq_len = j.at("max_seq_len").get<int64_t>();
  // Vision models are not cached (model_factory.cpp): a cached model has no cross-attention layers.
  c.cross_attention_before = j.at("cross_attention_before").get<std::vector<int64_t>>();
  check(c.cross_attention_before.empty(), "a weight cache never holds a vision model");
  c.validate();
  return c;
}

const char* format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::BF16: return "bf16";
    case WeightFormat::Q8_0: return "q8_0";
    case WeightFormat::Q4_0: return "q4_0";
  }
  return "?";
}

WeightFormat format_from(const std::string& s) {
  if (s == "bf16") return WeightFormat::BF16;
  if (s == "q8_0") return WeightFormat::Q8_0;
  check(s == "q4_0", "unknown matrix format \"{}\"", s);
  return WeightFormat::Q4_0;
}

// Every matrix of the model under its cache name (the tied LM head once, as "embed").
template <typename Weights, typename Fn>
void for_each_matrix(Weights& w, bool tied, Fn&& fn) {
  fn(std::string("embed"), w.tok_embeddings);
  if (!tied) fn(std::string("output"), w.output);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    auto& L = w.layers[l];
    const std::string p = fmt::format("l{}.", l);
    fn(p + "wq", L.wq), fn(p + "wk", L.wk), fn(p + "wv", L.wv), fn(p + "wo", L.wo);
    fn(p + "w1", L.w1), fn(p + "w3", L.w3), fn(p + "w2", L.w2);
  }
}

template <typename Weights, typename Fn>
void for_each_vector(Weights& w, Fn&& fn) {
  fn(std::string("norm"), w.norm);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    fn(fmt::format("l{}.attention_norm", l), w.layers[l].attention_norm);
    fn(fmt::format("l{}.ffn_norm", l), w.layers[l].ffn_norm);
  }
}

}  // namespace

CacheLocation cache_location(const CacheSource& s, const PrecisionMap& precision) {
  CacheLocation loc;
  const json identity = source_identity(s);
  json matrices = json::parse(precision.to_json());
  matrices.erase("kv_cache");  // not part of the weights
  json key{{"version", kCacheVersion}, {"source", identity}, {"layers", s.layers ? *s.layers : -1},
           {"precision", matrices}, {"mesh", s.mesh}};
  if (!s.share.whole()) key["shard"] = {s.share.rank, s.share.ranks};
  loc.key = key.dump();
  // One folder per rank of a mesh, as the original keeps one cache per mesh.
  const fs::path mode = s.share.whole() ? fs::path(mode_folder(precision))
                                        : fs::path(mode_folder(precision)) /
                                              fmt::format("rank-{}-of-{}", s.share.rank, s.share.ranks);
  const std::string id = identity.dump();
  const fs::path user = user_cache_root() / "weights";
  if (!s.checkpoint) {
    loc.path = user / fmt::format("random-{}-seed{}", s.preset, s.seed) / s.mesh / mode / file_name("weights", s.layers);
    loc.fallback_path = loc.path;
    return loc;
  }
  const fs::path& p = *s.checkpoint;
  const bool file = fs::is_regular_file(p);
  const fs::path dir = file ? p.parent_path() : p;
  const std::string stem = file ? p.stem().string() : "weights";
  loc.path = dir / s.mesh / mode / file_name(stem, s.layers);
  const std::string where = identity.contains("path") ? identity["path"].get<std::string>() : id;
  loc.fallback_path = user / fmt::format("{}-{:016x}", p.filename().string(), fnv1a(where.data(), where.size())) /
                      s.mesh / mode / file_name(stem, s.layers);
  return loc;
}

namespace {

// The share a key names (absent: the whole model), and the key without its mesh and share.
Share key_share(const json& key) {
  if (!key.is_object() || !key.contains("shard")) return {};
  return {key["shard"].at(0).get<int>(), key["shard"].at(1).get<int>()};
}

std::string describe_share(const json& key) {
  const Share s = key_share(key);
  return fmt::format("rank {} of {} (mesh {})", s.rank, s.ranks, key.value("mesh", "?"));
}

json without_mesh(json key) {
  if (key.is_object()) key.erase("mesh"), key.erase("shard");
  return key;
}

// The weights of a cache file whose key is `key`.
LoadedCheckpoint read_cache_file(const std::shared_ptr<io::GgufFile>& file, const std::string& key) {
  LoadedCheckpoint out;
  out.config = config_from_json(json::parse(file->get_string(kConfigKey)));
  const std::string_view format = file->get_string(kFormatKey);
  out.format = format == "meta" ? CheckpointFormat::Meta
               : format == "gguf" ? CheckpointFormat::Gguf : CheckpointFormat::HuggingFace;
  const json matrices = json::parse(file->get_string(kMatricesKey));
  ModelWeights& w = out.weights;
  w.keep_alive.push_back(file);
  w.layers.resize(static_cast<size_t>(out.config.n_layers));
  auto tensor = [&](const std::string& name) -> const io::GgufTensor& {
    const io::GgufTensor* t = file->find(name);
    check(t != nullptr, "tensor {} is missing", name);
    return *t;
  };
  const bool tied = out.config.tied_embeddings;
  for_each_matrix(w, tied, [&](const std::string& name, Matrix& m) {
    const json& info = matrices.at(name);
    m.format = format_from(info.at("format").get<std::string>());
    m.rows = info.at("rows").get<int64_t>();
    m.cols = info.at("cols").get<int64_t>();
    const io::GgufTensor& t = tensor(name);
    check(t.data.size() == m.bytes(), "tensor {} holds {} bytes; its format needs {}", name, t.data.size(), m.bytes());
    m.data = t.data.data();
    if (name == "embed" && tied) w.output = m;
  });
  for_each_vector(w, [&](const std::string& name, std::vector<float>& v) {
    const io::GgufTensor& t = tensor(name);
    check(t.type == GgmlType::F32 && t.dims.size() == 1, "tensor {} is not an f32 vector", name);
    v.resize(static_cast<size_t>(t.dims[0]));
    std::memcpy(v.data(), t.data.data(), t.data.size());
  });
  w.shard = shard_plan(out.config, key_share(json::parse(key, nullptr, false)));
  return out;
}

}  // namespace

std::optional<LoadedCheckpoint> read_weight_cache(const fs::path& path, const std::string& key, std::string& warning) {
  if (!fs::exists(path)) return std::nullopt;
  std::string other_mesh;
  try {
    auto file = std::make_shared<io::GgufFile>(path);
    const std::optional<std::string_view> stored = file->find_string(kKeyKey);
    if (stored != std::optional<std::string_view>(key)) {
      const json ours = json::parse(key, nullptr, false);
      const json theirs = stored ? json::parse(*stored, nullptr, false) : json();
      if (ours.is_object() && theirs.is_object() && without_mesh(ours) == without_mesh(theirs)) {
        other_mesh = fmt::format("weight cache {} holds the share of {}, not of {}: it was moved or copied from "
                                 "another mesh's folder; delete it, and the right share is built",
                                 path.string(), describe_share(theirs), describe_share(ours));
      } else {
        warning = fmt::format("weight cache {} was built for other weights or settings; rebuilding it", path.string());
        return std::nullopt;
      }
    }
    if (other_mesh.empty()) return read_cache_file(file, key);
  } catch (const std::exception& e) {
    warning = fmt::format("weight cache {} is unreadable ({}); rebuilding it", path.string(), e.what());
    return std::nullopt;
  }
  fail("{}", other_mesh);
}

void write_weight_cache(const fs::path& path, const std::string& key, const LoadedCheckpoint& model) {
  const ModelWeights& w = model.weights;
  io::GgufWriter out(kCacheAlignment);
  out.set_string("general.architecture", "llama3-weight-cache");
  out.set_string(kKeyKey, key);
  out.set_string(kConfigKey, config_to_json(model.config).dump());
  out.set_string(kFormatKey, model.format == CheckpointFormat::Meta   ? "meta"
                             : model.format == CheckpointFormat::Gguf ? "gguf" : "huggingface");
  json matrices = json::object();
  for_each_matrix(w, w.tied(), [&](const std::string& name, const Matrix& m) {
    matrices[name] = {{"format", format_name(m.format)}, {"rows", m.rows}, {"cols", m.cols}};
    const std::span<const std::byte> bytes(m.data, m.bytes());
    auto fill = [bytes](std::span<std::byte> dst) { std::memcpy(dst.data(), bytes.data(), bytes.size()); };
    if (m.format == WeightFormat::BF16) {
      const int64_t dims[] = {m.cols, m.rows};
      out.add_tensor(name, GgmlType::BF16, dims, bytes.size(), fill);
    } else {
      const int64_t dims[] = {static_cast<int64_t>(bytes.size())};
      out.add_tensor(name, GgmlType::I8, dims, bytes.size(), fill);
    }
  });
  for_each_vector(w, [&](const std::string& name, const std::vector<float>& v) {
    const int64_t dims[] = {static_cast<int64_t>(v.size())};
    const std::span<const std::byte> bytes = std::as_bytes(std::span(v));
    out.add_tensor(name, GgmlType::F32, dims, bytes.size(),
                   [bytes](std::span<std::byte> dst) { std::memcpy(dst.data(), bytes.data(), bytes.size()); });
  });
  out.set_string(kMatricesKey, matrices.dump());
  fs::create_directories(path.parent_path());
  out.write(path);
}

}  // namespace llama3::model
