#include "model/matrix_convert.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "core/quant_blocks.h"
#include "kernels/quant_pack.h"

namespace llama3::model {

using kernels::WeightFormat;

namespace {

// Rows converted per task: a multiple of the packed layout's 16-row groups, small enough that
// the ggml-block scratch of a task stays in L2.
constexpr int64_t kRowChunk = 64;

std::unique_ptr<Progress> g_progress;  // set by ConversionProgress

bool is_float(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

GgmlType ggml_of(WeightFormat f) { return f == WeightFormat::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q4_0; }

// One source row into ggml blocks of `target` (Q8_0 or Q4_0).
void row_to_blocks(const SourceMatrix& src, int64_t row, WeightFormat target, std::byte* out, std::vector<float>& tmp) {
  const std::span<const std::byte> in(src.data + static_cast<size_t>(row) * src.row_bytes(), src.row_bytes());
  const size_t blocks = static_cast<size_t>(src.cols / 32);
  if (src.type == ggml_of(target)) {
    std::memcpy(out, in.data(), in.size());
  } else if (target == WeightFormat::Q8_0) {
    convert_row_to_q8_0(src.type, in, {reinterpret_cast<BlockQ8_0*>(out), blocks});
  } else {
    tmp.resize(static_cast<size_t>(src.cols));
    dequantize_row(src.type, in, tmp);
    quantize_row_q4_0(tmp, {reinterpret_cast<BlockQ4_0*>(out), blocks});
  }
}

Matrix to_bf16(const SourceMatrix& src, ModelWeights& owner) {
  if (src.type == GgmlType::BF16 && reinterpret_cast<uintptr_t>(src.data) % 2 == 0) {
    return {WeightFormat::BF16, src.data, src.rows, src.cols};  // zero-copy
  }
  uint16_t* dst = owner.allocate(src.rows * src.cols);
  parallel_for(static_cast<size_t>(src.rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const std::span<const std::byte> in(src.data + r * src.row_bytes(), src.row_bytes());
      convert_row_to_bf16(src.type, in, {dst + r * static_cast<size_t>(src.cols), static_cast<size_t>(src.cols)});
    }
  });
  return {WeightFormat::BF16, reinterpret_cast<const std::byte*>(dst), src.rows, src.cols};
}

Matrix to_packed(const SourceMatrix& src, WeightFormat target, ModelWeights& owner) {
  check(src.cols % 32 == 0, "tensor {}: {} columns; 8- and 4-bit formats need a multiple of 32", src.name, src.cols);
  std::byte* dst = owner.allocate_bytes(kernels::packed_bytes(target, src.rows, src.cols));
  const size_t block_bytes = static_cast<size_t>(ggml_traits(ggml_of(target)).block_bytes);
  const size_t row_blocks_bytes = static_cast<size_t>(src.cols / 32) * block_bytes;
  const int64_t chunks = (src.rows + kRowChunk - 1) / kRowChunk;
  // One chunk of rows at a time per thread: source rows -> ggml blocks -> packed groups. Each
  // chunk's packed bytes are contiguous (16-row groups), at the offset of its first row.
  parallel_for(static_cast<size_t>(chunks), [&](size_t c0, size_t c1) {
    std::vector<std::byte> blocks;
    std::vector<float> tmp;
    for (size_t c = c0; c < c1; ++c) {
      const int64_t r0 = static_cast<int64_t>(c) * kRowChunk;
      const int64_t n = std::min(kRowChunk, src.rows - r0);
      blocks.resize(static_cast<size_t>(n) * row_blocks_bytes);
      for (int64_t r = 0; r < n; ++r) row_to_blocks(src, r0 + r, target, blocks.data() + r * row_blocks_bytes, tmp);
      const size_t offset = static_cast<size_t>(kernels::packed_groups(r0) * kernels::packed_group_bytes(target, src.cols));
      kernels::pack_ggml_rows(target, blocks, n, src.cols,
                              {dst + offset, kernels::packed_bytes(target, n, src.cols)});
    }
  });
  return {target, dst, src.rows, src.cols};
}

}  // namespace

size_t SourceMatrix::row_bytes() const {
  const GgmlTypeTraits t = ggml_traits(type);
  return static_cast<size_t>(cols / t.block_elements * t.block_bytes);
}

WeightFormat target_format(const SourceMatrix& src, MatrixPrecision precision) {
  check(is_float(src.type) || can_dequantize(src.type),
        "tensor {} has type {}, which this engine does not read (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, "
        "Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)",
        src.name, ggml_type_name(src.type));
  if (!precision.native) return precision.format;
  if (is_float(src.type)) return WeightFormat::BF16;
  if (src.type == GgmlType::Q4_0) return WeightFormat::Q4_0;
  return WeightFormat::Q8_0;
}

bool conversion_is_exact(GgmlType type, WeightFormat target) {
  switch (target) {
    case WeightFormat::BF16: return type == GgmlType::BF16;
    case WeightFormat::Q8_0: return converts_exactly_to_q8_0(type);
    case WeightFormat::Q4_0: return type == GgmlType::Q4_0;
  }
  return false;
}

Matrix convert_matrix(const SourceMatrix& src, MatrixPrecision precision, ModelWeights& owner) {
  const WeightFormat target = target_format(src, precision);
  const int64_t block = ggml_traits(src.type).block_elements;
  check(src.cols % block == 0, "tensor {}: {} columns is not a multiple of its type's block of {}", src.name, src.cols,
        block);
  Matrix m = target == WeightFormat::BF16 ? to_bf16(src, owner) : to_packed(src, target, owner);
  if (g_progress) g_progress->advance(static_cast<double>(src.rows * src.cols) / 1e6);
  return m;
}

ModelWeights convert_weights(const ModelWeights& src, const PrecisionMap& p) {
  ModelWeights out;
  auto convert = [&](const Matrix& m, MatrixPrecision precision) {
    check(m.format == WeightFormat::BF16, "convert_weights: source matrices must be bf16");
    return convert_matrix({"matrix", GgmlType::BF16, m.data, m.rows, m.cols}, precision, out);
  };
  if (src.tied()) {
    out.tok_embeddings = out.output = convert(src.output, p.lm_head);
  } else {
    out.tok_embeddings = convert(src.tok_embeddings, embedding_precision());
    out.output = convert(src.output, p.lm_head);
  }
  out.norm = src.norm;
  for (const LayerWeights& L : src.layers) {
    LayerWeights& o = out.layers.emplace_back();
    o.wq = convert(L.wq, p.wqkv), o.wk = convert(L.wk, p.wqkv), o.wv = convert(L.wv, p.wqkv);
    o.wo = convert(L.wo, p.wo);
    o.w1 = convert(L.w1, p.ff1_3), o.w3 = convert(L.w3, p.ff1_3);
    o.w2 = convert(L.w2, p.ff2);
    o.attention_norm = L.attention_norm;
    o.ffn_norm = L.ffn_norm;
  }
  return out;
}

ConversionProgress::ConversionProgress(const std::string& label, double total_elements) {
  g_progress = std::make_unique<Progress>(label, total_elements / 1e6, "M weights");
}

ConversionProgress::~ConversionProgress() { g_progress.reset(); }

Matrix convert_scratch(AlignedBuffer scratch, const SourceMatrix& src, MatrixPrecision precision, ModelWeights& owner) {
  Matrix m = convert_matrix(src, precision, owner);
  if (m.data == scratch.data()) owner.buffers.push_back(std::move(scratch));
  return m;
}

}  // namespace llama3::model
