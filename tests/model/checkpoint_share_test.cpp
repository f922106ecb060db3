// One rank's share of a checkpoint (a mesh's rank loading only its slices): in every format and
// precision the share is bitwise the whole model's slices, including the windows of columns
// that cut through a K-quant's 256-wide blocks; a rank's share goes to a weight cache of its own;
// and a rank's resident memory after loading and running is its share, not the checkpoint.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <fstream>
#include <random>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant_blocks.h"
#include "dist/solo_communicator.h"
#include "mesh_model.h"
#include "model/checkpoint_identity.h"
#include "model/checkpoint_loader.h"
#include "model/checkpoint_writer.h"
#include "model/forward_helpers.h"
#include "model/gguf_model_writer.h"
#include "model/matrix_slice.h"
#include "model/mesh_open.h"
#include "model/model_factory.h"
#include "model/random_weights.h"
#include "model/reference_models.h"
#include "test_support.h"

namespace llama3::model {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using ::testing::HasSubstr;

// VmRSS (this layer's tests do not link the runtime, which reads it for the demo).
size_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// Columns [c0, c0 + n) of row r, in f32 whatever the matrix's format.
std::vector<float> row_window(const Matrix& m, int64_t r, int64_t c0, int64_t n) {
  std::vector<float> row(static_cast<size_t>(m.cols));
  matrix_row_f32(m, r, row.data());
  return {row.begin() + c0, row.begin() + c0 + n};
}

// `part` is bitwise the window of `whole` at (r0, c0), in the same format.
void expect_window(const Matrix& whole, const Matrix& part, int64_t r0, int64_t c0, const std::string& what) {
  ASSERT_EQ(part.format, whole.format) << what;
  ASSERT_LE(r0 + part.rows, whole.rows) << what;
  ASSERT_LE(c0 + part.cols, whole.cols) << what;
  for (int64_t r = 0; r < part.rows; ++r) {
    const std::vector<float> a = row_window(whole, r0 + r, c0, part.cols), b = row_window(part, r, 0, part.cols);
    ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << what << " row " << r;
  }
}

void expect_share_of(const ModelWeights& whole, const ModelWeights& part, int64_t head_dim, const std::string& what) {
  const ShardPlan& p = part.shard;
  const int64_t hd = head_dim;
  EXPECT_EQ(part.tied(), whole.tied()) << what;
  expect_window(whole.tok_embeddings, part.tok_embeddings, p.vocab.begin, 0, what + " embedding");
  expect_window(whole.output, part.output, p.vocab.begin, 0, what + " output");
  EXPECT_EQ(part.norm, whole.norm);
  ASSERT_EQ(part.layers.size(), whole.layers.size());
  for (size_t l = 0; l < whole.layers.size(); ++l) {
    const LayerWeights &w = whole.layers[l], &s = part.layers[l];
    const std::string at = fmt::format("{} layer {} ", what, l);
    EXPECT_EQ(s.wq.rows, p.q_heads.size * hd);
    EXPECT_EQ(s.w2.cols, p.ffn.size);
    expect_window(w.wq, s.wq, p.q_heads.begin * hd, 0, at + "wq");
    expect_window(w.wk, s.wk, p.kv_heads.begin * hd, 0, at + "wk");
    expect_window(w.wv, s.wv, p.kv_heads.begin * hd, 0, at + "wv");
    expect_window(w.wo, s.wo, 0, p.q_heads.begin * hd, at + "wo");
    expect_window(w.w1, s.w1, p.ffn.begin, 0, at + "w1");
    expect_window(w.w3, s.w3, p.ffn.begin, 0, at + "w3");
    expect_window(w.w2, s.w2, 0, p.ffn.begin, at + "w2");
    EXPECT_EQ(s.attention_norm, w.attention_norm);
    EXPECT_EQ(s.ffn_norm, w.ffn_norm);
  }
}

// Every rank of `ranks` loads its share of `path`, which must equal the whole model's slices.
void expect_every_share(const fs::path& path, const std::string& mode, int ranks) {
  const PrecisionMap precision = precision_mode(mode);
  const LoadedCheckpoint whole = load_checkpoint(path, std::nullopt, precision);
  for (int r = 0; r < ranks; ++r) {
    const LoadedCheckpoint part = load_checkpoint(path, std::nullopt, precision, {r, ranks});
    ASSERT_EQ(part.weights.shard.rank, r);
    ASSERT_EQ(part.weights.shard.ranks, ranks);
    expect_share_of(whole.weights, part.weights, whole.config.head_dim,
                    fmt::format("{} {} rank {} of {}", path.filename().string(), mode, r, ranks));
  }
}

GgufVocab tiny_vocab(int64_t n) {
  GgufVocab v;
  for (int64_t i = 0; i < n; ++i) v.tokens.push_back(fmt::format("t{}", i)), v.token_types.push_back(1);
  v.bos_id = 0;
  v.eos_id = 1;
  return v;
}

// params.json for mesh_config: Meta's FFN rule gives int(int(2 * 4 * 256 / 3) * 512.5 / 682) = 512.
void write_meta_params(const ModelConfig& c, const fs::path& dir) {
  const nlohmann::json params = {{"dim", c.dim}, {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
                                 {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size}, {"multiple_of", 1},
                                 {"ffn_dim_multiplier", 512.5 / 682.0}, {"norm_eps", c.norm_eps},
                                 {"rope_theta", c.rope_theta}, {"use_scaled_rope", true},
                                 {"rope_scaling_factor", c.rope_scaling.factor}};
  testing::write_text(dir / "params.json", params.dump());
}

// A checkpoint of mesh_config's model, written in one of the formats the engine loads.
using Writer = std::function<fs::path(const ModelConfig&, const ModelWeights&, const fs::path& dir)>;

fs::path gguf_writer(const ModelConfig& c, const ModelWeights& w, const fs::path& dir, GgmlType type) {
  const fs::path file = dir / "model.gguf";
  write_gguf_model(c, w, tiny_vocab(c.vocab_size), type, file, "share-test");
  return file;
}

Writer gguf_of(GgmlType type) {
  return [type](const ModelConfig& c, const ModelWeights& m, const fs::path& d) { return gguf_writer(c, m, d, type); };
}

const std::map<std::string, Writer>& writers() {
  static const std::map<std::string, Writer> w = {
      {"hf", [](const ModelConfig& c, const ModelWeights& m, const fs::path& d) { return write_hf_folder(c, m, d), d; }},
      {"meta", [](const ModelConfig& c, const ModelWeights& m, const fs::path& d) {
         write_meta_safetensors(c, m, d);
         write_meta_params(c, d);
         return d;
       }},
      {"gguf_bf16", gguf_of(GgmlType::BF16)},
      {"gguf_f16", gguf_of(GgmlType::F16)},
      {"gguf_q8_0", gguf_of(GgmlType::Q8_0)},
      {"gguf_q4_0", gguf_of(GgmlType::Q4_0)},
  };
  return w;
}

class ShareOfCheckpoint : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(ShareOfCheckpoint, EveryRankLoadsBitwiseTheWholeModelsSlicesInEveryMode) {
  const auto& [format, gqa] = GetParam();
  const ModelConfig c = testing::mesh_config(gqa, /*tied=*/gqa);  // GQA tied, MHA untied
  TempDir dir("share-" + format);
  const fs::path path = writers().at(format)(c, random_weights(c, 11), dir.path());
  for (const char* mode : {"bf16", "performance", "accuracy", "native"}) {
    for (int ranks : {2, 4, 8}) expect_every_share(path, mode, ranks);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, ShareOfCheckpoint,
                         ::testing::Combine(::testing::Values("hf", "meta", "gguf_bf16", "gguf_f16", "gguf_q8_0",
                                                              "gguf_q4_0"),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) ? "_gqa_tied" : "_mha_untied");
                         });

// Meta's model-parallel .pth shards (wq rows or wo columns spread over consolidated.NN.pth) and
// sharded, f16 and f32 Hugging Face folders, as the Python reference writes them.
TEST(ShareOfCheckpoint, MergedMetaShardsAndOtherDtypesGiveTheSameSlices) {
  const testing::ReferenceModel& m = testing::gqa_tied_s8();  // 4 heads on 2 kv heads, MLP 768
  for (const char* variant : {"meta2", "meta4", "hf3", "hf16", "hf32"}) {
    for (const char* mode : {"bf16", "performance"}) {
      for (int ranks : {2, 4}) expect_every_share(m.folder(variant), mode, ranks);
    }
  }
}

// Random Q4_K / Q6_K blocks with sane scales (the scales are fp16: random bytes could be NaN).
std::vector<std::byte> random_k_blocks(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
  const GgmlTypeTraits t = ggml_traits(type);
  std::vector<std::byte> out(static_cast<size_t>(rows * cols / t.block_elements * t.block_bytes));
  std::mt19937 rng(seed);
  for (std::byte& b : out) b = static_cast<std::byte>(rng() & 0xff);
  const size_t blocks = out.size() / static_cast<size_t>(t.block_bytes);
  std::uniform_real_distribution<float> scale(0.001f, 0.01f);
  for (size_t i = 0; i < blocks; ++i) {
    std::byte* b = out.data() + i * static_cast<size_t>(t.block_bytes);
    const uint16_t d = f32_to_f16(scale(rng)), dmin = f32_to_f16(scale(rng));
    if (type == GgmlType::Q4_K) {
      std::memcpy(b + offsetof(BlockQ4_K, d), &d, 2);
      std::memcpy(b + offsetof(BlockQ4_K, dmin), &dmin, 2);
    } else {
      std::memcpy(b + offsetof(BlockQ6_K, d), &d, 2);
    }
  }
  return out;
}

// A rank's columns of wo or w2 rarely fall on a K-quant's 256-wide blocks (64 columns of a
// 512-wide matrix here): those rows are dequantized and the window kept, and the result must
// still equal the whole matrix's conversion, native (-> q8), q4 and bf16 alike.
TEST(ShareOfCheckpoint, ColumnWindowsThroughKQuantBlocksEqualTheWholeConversion) {
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    const int64_t rows = 48, cols = 512;
    const std::vector<std::byte> bytes = random_k_blocks(type, rows, cols, 3);
    const SourceMatrix whole{"w2", type, bytes.data(), rows, cols};
    for (MatrixPrecision p : {MatrixPrecision{true}, MatrixPrecision{false, kernels::WeightFormat::Q4_0},
                              MatrixPrecision{false, kernels::WeightFormat::BF16}}) {
      ModelWeights owner;
      const Matrix all = convert_matrix(whole, p, owner);
      for (const auto& [r, k] : {std::pair{Slice{0, rows}, Slice{64, 64}}, std::pair{Slice{0, rows}, Slice{0, 256}},
                                 std::pair{Slice{16, 16}, Slice{448, 64}}, std::pair{Slice{32, 16}, Slice{0, cols}}}) {
        const Matrix part = convert_window(whole, r, k, p, owner);
        expect_window(all, part, r.begin, k.begin, fmt::format("{} cols {}+{}", ggml_type_name(type), k.begin, k.size));
      }
    }
  }
  ModelWeights owner;
  const std::vector<std::byte> bytes = random_k_blocks(GgmlType::Q4_K, 16, 256, 1);
  EXPECT_THAT([&] { convert_window({"w", GgmlType::Q4_K, bytes.data(), 16, 256}, {0, 16}, {224, 64}, {}, owner); },
              ::testing::ThrowsMessage<Error>(HasSubstr("lies outside")));
}

class ShareCache : public ::testing::Test {
 protected:
  void SetUp() override { setenv("LLAMA3_CACHE", (cache_root_ / "user").c_str(), 1); }
  TempDir cache_root_{"share-cache"};
};

// Each rank caches its own share in a folder of its own; a later run maps it and computes the
// same; a share moved into another rank's folder is refused by name, never used.
TEST_F(ShareCache, EachRankCachesItsShareInItsOwnFolder) {
  TempDir dir("share-cache-src");
  const ModelConfig c = testing::mesh_config(true, false);
  write_hf_folder(c, random_weights(c, 4), dir.path());
  ModelRequest r;
  r.model_dir = dir.path().string();
  r.mesh = "2x1";
  const ModelPlan plan = plan_model(r);
  std::vector<std::vector<float>> first_logits;
  for (int rank : {0, 1}) {
    dist::SoloCommunicator solo(rank, 2);
    OpenedModel first = open_local(r, plan, {rank, 2}, &solo);
    const fs::path expected = dir / "2x1" / "performance" / fmt::format("rank-{}-of-2", rank) / "weights.gguf";
    EXPECT_EQ(first.cache, "written " + expected.string());
    EXPECT_EQ(first.model->weights().shard.rank, rank);
    OpenedModel second = open_local(r, plan, {rank, 2}, &solo);
    EXPECT_EQ(second.cache, "loaded " + expected.string());
    EXPECT_EQ(second.model->weights().shard.rank, rank);
    EXPECT_EQ(second.model->weights().layers[0].w1.rows, c.ffn_dim / 2);
    EXPECT_EQ(full_logits(*first.model, tokens(6, 2), kernels::KvDType::F32),
              full_logits(*second.model, tokens(6, 2), kernels::KvDType::F32));
  }
  // Rank 0's share copied over rank 1's.
  const fs::path base = dir / "2x1" / "performance";
  fs::copy_file(base / "rank-0-of-2" / "weights.gguf", base / "rank-1-of-2" / "weights.gguf",
                fs::copy_options::overwrite_existing);
  dist::SoloCommunicator solo(1, 2);
  EXPECT_THAT([&] { open_local(r, plan, {1, 2}, &solo); },
              ::testing::ThrowsMessage<Error>(
                  AllOf(HasSubstr("holds the share of rank 0 of 2 (mesh 2x1), not of rank 1 of 2"),
                        HasSubstr("another mesh's folder"))));
}

// The rank's resident memory after loading its share of an 8-/4-bit model and running a pass
// is about its share: the converted slices stay, the checkpoint's pages are released. The
// model: 4 layers of width 1024 and MLP 4096, a tied vocabulary of 16384 (~150 MB in bf16, ~50 MB
// in performance mode).
TEST(ShareOfCheckpoint, ARanksResidentMemoryIsItsShare) {
  if (testing::kSanitized) GTEST_SKIP() << "ASan's shadow memory and freed-memory quarantine are resident too";
  ModelConfig c = testing::mesh_config(true, true);
  c.dim = 1024;
  c.n_layers = 4;
  c.n_heads = 16;
  c.n_kv_heads = 8;
  c.head_dim = 64;
  c.ffn_dim = 4096;
  c.vocab_size = 16384;
  TempDir dir("share-rss");
  write_hf_folder(c, random_weights(c, 9), dir.path());
  ModelRequest r;
  r.model_dir = dir.path().string();
  r.weight_cache = false;
  const ModelPlan plan = plan_model(r);
  const double whole = static_cast<double>(plan.weight_bytes);
  for (int ranks : {2, 4}) {
    // Memory freed earlier (the written model's) goes back to the system first, or the share
    // would reuse it without growing the resident set.
    malloc_trim(0);
    const size_t before = resident_bytes();
    dist::SoloCommunicator solo(ranks - 1, ranks);
    double grown = 0;
    {
      OpenedModel m = open_local(r, plan, {ranks - 1, ranks}, &solo);
      full_logits(*m.model, tokens(4, 1, 300), kernels::KvDType::F32);
      grown = static_cast<double>(resident_bytes()) - static_cast<double>(before);
    }
    // Within 25% of 1/T of the weights, plus 12 MB for the KV cache and scratch of one pass:
    // holding the checkpoint's pages too (the whole 150 MB) or the whole model fails it.
    EXPECT_LT(grown, whole / ranks * 1.25 + 12e6) << ranks << " ranks; whole model " << whole / 1e6 << " MB";
    EXPECT_GT(grown, whole / ranks * 0.75) << ranks << " ranks";
    std::printf("rank %d of %d: +%.1f MB resident (whole model %.1f MB)\n", ranks - 1, ranks, grown / 1e6, whole / 1e6);
  }
}

TEST(CheckpointIdentity, NamesWhatDiffersBetweenTwoCopies) {
  const std::vector<CheckpointFile> ours = {{"config.json", 10, "aa", 1}, {"model.safetensors", 100, "bb", 2}};
  std::vector<CheckpointFile> theirs = ours;
  theirs[0].mtime_ns = 99;  // a copy's modification time differs: the same checkpoint
  EXPECT_EQ(checkpoint_difference(ours, theirs), "");
  theirs[1].size = 101;
  EXPECT_EQ(checkpoint_difference(ours, theirs), "model.safetensors has 101 bytes, not 100");
  theirs[1] = {"model.safetensors", 100, "cc", 2};
  EXPECT_THAT(checkpoint_difference(ours, theirs), HasSubstr("model.safetensors has another header"));
  theirs.pop_back();
  EXPECT_EQ(checkpoint_difference(ours, theirs), "model.safetensors is missing");
  theirs = ours;
  theirs.push_back({"extra.safetensors", 1, "dd", 3});
  EXPECT_EQ(checkpoint_difference(ours, theirs), "extra.safetensors is there too");
}

}  // namespace
}  // namespace llama3::model
