#include "model/gguf_model_writer.h"

#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/quant_blocks.h"
#include "io/gguf_writer.h"
#include "kernels/quant_pack.h"
#include "model/gguf_checkpoint.h"
#include "model/tensor_names.h"

namespace llama3::model {

namespace fs = std::filesystem;
using kernels::WeightFormat;

namespace {

bool same_format(WeightFormat f, GgmlType t) {
  return (f == WeightFormat::Q8_0 && t == GgmlType::Q8_0) || (f == WeightFormat::Q4_0 && t == GgmlType::Q4_0);
}

// Row r of `m` as `type`, into `out` (row_bytes long).
void write_row(const Matrix& m, int64_t r, GgmlType type, std::byte* out, std::vector<float>& tmp) {
  const size_t blocks = static_cast<size_t>(m.cols / 32);
  if (same_format(m.format, type)) {
    kernels::unpack_row_ggml({m.format, m.data, m.rows, m.cols}, r,
                             {out, blocks * static_cast<size_t>(ggml_traits(type).block_bytes)});
    return;
  }
  if (type == GgmlType::BF16 && m.format == WeightFormat::BF16) {
    std::memcpy(out, m.bf16() + r * m.cols, static_cast<size_t>(m.cols) * 2);
    return;
  }
  tmp.resize(static_cast<size_t>(m.cols));
  matrix_row_f32(m, r, tmp.data());
  switch (type) {
    case GgmlType::F32: std::memcpy(out, tmp.data(), tmp.size() * 4); break;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (size_t c = 0; c < tmp.size(); ++c) {
        const uint16_t v = type == GgmlType::F16 ? f32_to_f16(tmp[c]) : f32_to_bf16(tmp[c]);
        std::memcpy(out + 2 * c, &v, 2);
      }
      break;
    case GgmlType::Q8_0: quantize_row_q8_0(tmp, {reinterpret_cast<BlockQ8_0*>(out), blocks}); break;
    case GgmlType::Q4_0: quantize_row_q4_0(tmp, {reinterpret_cast<BlockQ4_0*>(out), blocks}); break;
    default: fail("cannot write GGUF tensors of type {}", ggml_type_name(type));
  }
}

void add_matrix(io::GgufWriter& w, const std::string& name, const Matrix& m, GgmlType type) {
  const GgmlTypeTraits t = ggml_traits(type);
  check(m.cols % t.block_elements == 0, "{}: {} columns is not a multiple of {}'s block of {}", name, m.cols, t.name,
        t.block_elements);
  const size_t row_bytes = static_cast<size_t>(m.cols / t.block_elements * t.block_bytes);
  const int64_t dims[] = {m.cols, m.rows};
  w.add_tensor(name, type, dims, row_bytes * static_cast<size_t>(m.rows), [&m, type, row_bytes](std::span<std::byte> dst) {
    parallel_for(static_cast<size_t>(m.rows), [&](size_t r0, size_t r1) {
      std::vector<float> tmp;
      for (size_t r = r0; r < r1; ++r) write_row(m, static_cast<int64_t>(r), type, dst.data() + r * row_bytes, tmp);
    });
  });
}

void add_vector(io::GgufWriter& w, const std::string& name, const std::vector<float>& v) {
  const int64_t dims[] = {static_cast<int64_t>(v.size())};
  w.add_tensor(name, GgmlType::F32, dims, v.size() * 4,
               [&v](std::span<std::byte> dst) { std::memcpy(dst.data(), v.data(), v.size() * 4); });
}

}  // namespace

uint32_t llama_file_type(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return 0;   // LLAMA_FTYPE_ALL_F32
    case GgmlType::F16: return 1;   // LLAMA_FTYPE_MOSTLY_F16
    case GgmlType::Q4_0: return 2;  // LLAMA_FTYPE_MOSTLY_Q4_0
    case GgmlType::Q8_0: return 7;  // LLAMA_FTYPE_MOSTLY_Q8_0
    case GgmlType::BF16: return 32; // LLAMA_FTYPE_MOSTLY_BF16
    default: fail("cannot write GGUF files of type {} (F32, F16, BF16, Q8_0, Q4_0)", ggml_type_name(type));
  }
}

void write_gguf_model(const ModelConfig& c, const ModelWeights& weights, const GgufVocab& vocab, GgmlType type,
                      const fs::path& path, const std::string& model_name) {
  const uint32_t file_type = llama_file_type(type);
  check(static_cast<int64_t>(vocab.tokens.size()) == c.vocab_size,
        "the tokenizer has {} tokens but the model's vocabulary is {}", vocab.tokens.size(), c.vocab_size);
  check(vocab.token_types.size() == vocab.tokens.size(), "tokenizer: {} token types for {} tokens",
        vocab.token_types.size(), vocab.tokens.size());
  io::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", model_name);
  w.set_u32("general.file_type", file_type);
  if (type == GgmlType::Q8_0 || type == GgmlType::Q4_0) w.set_u32("general.quantization_version", 2);
  w.set_u32("llama.context_length", static_cast<uint32_t>(c.max_seq_len));
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  w.set_u32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(c.ffn_dim));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  w.set_f32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.norm_eps));
  w.set_u32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "llama-bpe");
  w.set_array("tokenizer.ggml.tokens", std::span<const std::string>(vocab.tokens));
  w.set_array("tokenizer.ggml.token_type", std::span<const int32_t>(vocab.token_types));
  w.set_array("tokenizer.ggml.merges", std::span<const std::string>(vocab.merges));
  w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(vocab.bos_id));
  w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(vocab.eos_id));
  if (vocab.chat_template) w.set_string("tokenizer.chat_template", *vocab.chat_template);

  add_matrix(w, kGgufEmbed, weights.tok_embeddings, type);
  if (!weights.tied()) add_matrix(w, kGgufOutput, weights.output, type);
  add_vector(w, kGgufNorm, weights.norm);
  std::vector<float> freqs;
  if (c.rope_scaling.enabled || !c.rope_freq_divisors.empty()) {
    const std::vector<double> divisors = c.rope_freq_divisors.empty() ? llama3_rope_divisors(c) : c.rope_freq_divisors;
    freqs.assign(divisors.begin(), divisors.end());
    add_vector(w, kGgufRopeFreqs, freqs);
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = weights.layers[static_cast<size_t>(l)];
    for (LayerTensor t : kLayerTensors) {
      const std::string name = gguf_layer_tensor_name(l, t);
      if (is_norm(t)) {
        add_vector(w, name, layer_norm(L, t));
      } else {
        add_matrix(w, name, layer_matrix(L, t), type);
      }
    }
  }
  w.write(path);
}

}  // namespace llama3::model
