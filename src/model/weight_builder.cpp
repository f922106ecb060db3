#include "model/weight_builder.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/parallel.h"
#include "model/checkpoint_loader.h"
#include "model/matrix_slice.h"

namespace llama3::model {

using io::TensorInfo;

namespace {

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

}  // namespace

float tensor_element(const TensorInfo& t, int64_t i) {
  const std::byte* p = t.data.data();
  switch (t.dtype) {
    case DType::BF16: { uint16_t v; std::memcpy(&v, p + 2 * i, 2); return bf16_to_f32(v); }
    case DType::F16: { uint16_t v; std::memcpy(&v, p + 2 * i, 2); return f16_to_f32(v); }
    case DType::F32: { float v; std::memcpy(&v, p + 4 * i, 4); return v; }
    default: return 0.0f;
  }
}

uint16_t tensor_element_bf16(const TensorInfo& t, int64_t i) {
  if (t.dtype == DType::BF16) {
    uint16_t v;
    std::memcpy(&v, t.data.data() + 2 * i, 2);
    return v;
  }
  return f32_to_bf16(tensor_element(t, i));
}

void check_float_tensor(const TensorInfo& t) {
  check(t.dtype == DType::BF16 || t.dtype == DType::F16 || t.dtype == DType::F32,
        "tensor {} has dtype {}; expected BF16, F16 or F32", t.name, dtype_name(t.dtype));
}

Matrix WeightBuilder::matrix(const std::string& name, int64_t rows, int64_t cols, int concat_dim, MatrixPrecision precision,
                int64_t permuted_heads, Slice rs, Slice cs) {
    const auto parts = find_(name);
    int64_t total_rows = 0, total_cols = 0;
    for (const TensorInfo* p : parts) {
      check_float_tensor(*p);
      check(p->shape.size() == 2, "tensor {} has shape {}; expected 2 dimensions", name, shape_str(p->shape));
      if (concat_dim == 0) {
        total_rows += p->shape[0];
        total_cols = p->shape[1];
        check(p->shape[1] == cols, "tensor {} has shape {}; expected [{}, {}]", name, shape_str(p->shape),
              rows / static_cast<int64_t>(parts.size()), cols);
      } else {
        total_cols += p->shape[1];
        total_rows = p->shape[0];
        check(p->shape[0] == rows, "tensor {} has shape {}; expected [{}, {}]", name, shape_str(p->shape), rows,
              cols / static_cast<int64_t>(parts.size()));
      }
    }
    check(total_rows == rows && total_cols == cols, "tensor {} has shape [{}, {}] (over {} shard(s)); expected [{}, {}]",
          name, total_rows, total_cols, parts.size(), rows, cols);
    const TensorInfo& first = *parts.front();
    if (parts.size() == 1 && permuted_heads == 0) {
      const GgmlType type = first.dtype == DType::BF16 ? GgmlType::BF16
                            : first.dtype == DType::F16 ? GgmlType::F16 : GgmlType::F32;
      return convert_window({name, type, first.data.data(), rows, cols}, rs, cs, precision, w_);  // in place when it can
    }
    // Merged shards or permuted rows: a bf16 copy of the window first, then the precision's format.
    AlignedBuffer scratch(static_cast<size_t>(rs.size * cs.size) * 2);
    uint16_t* dst = reinterpret_cast<uint16_t*>(scratch.data());
    const int64_t head_dim = permuted_heads > 0 ? rows / permuted_heads : 0;
    parallel_for(static_cast<size_t>(rs.size), [&](size_t r0, size_t r1) {
      for (int64_t r = static_cast<int64_t>(r0); r < static_cast<int64_t>(r1); ++r) {
        const int64_t meta_row = rs.begin + r;
        const int64_t src_row = permuted_heads > 0 ? hf_row_of_meta_row(meta_row, head_dim) : meta_row;
        uint16_t* out = dst + r * cs.size;
        if (concat_dim == 0) {
          int64_t row = src_row;
          size_t part = 0;
          while (row >= parts[part]->shape[0]) row -= parts[part++]->shape[0];
          for (int64_t c = 0; c < cs.size; ++c) out[c] = tensor_element_bf16(*parts[part], row * cols + cs.begin + c);
        } else {
          int64_t c0 = 0;  // the part's first column in the whole matrix
          for (const TensorInfo* p : parts) {
            const int64_t pc = p->shape[1];
            const int64_t lo = std::max(c0, cs.begin), hi = std::min(c0 + pc, cs.end());
            for (int64_t c = lo; c < hi; ++c) out[c - cs.begin] = tensor_element_bf16(*p, src_row * pc + (c - c0));
            c0 += pc;
          }
        }
      }
    });
    const SourceMatrix src{name, GgmlType::BF16, scratch.data(), rs.size, cs.size};
    Matrix m = convert_scratch(std::move(scratch), src, precision, w_);
    for (const TensorInfo* p : parts) MappedFile::release_pages(p->data);  // copied: the file's pages are not needed
    return m;
  }

std::vector<float> WeightBuilder::vector(const std::string& name, int64_t n) {
    const TensorInfo& t = *find_(name).front();
    check_float_tensor(t);
    check(t.shape.size() == 1 && t.shape[0] == n, "tensor {} has shape {}; expected [{}]", name, shape_str(t.shape), n);
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = tensor_element(t, i);
    return v;
  }

std::vector<float> WeightBuilder::floats(const std::string& name, const std::vector<int64_t>& shape) {
  const TensorInfo& t = *find_(name).front();
  check_float_tensor(t);
  check(t.shape == shape, "tensor {} has shape {}; expected {}", name, shape_str(t.shape), shape_str(shape));
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = tensor_element(t, i);
  return v;
}


}  // namespace llama3::model
