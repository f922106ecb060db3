#include "model/model_weights.h"

#include <new>

#include "core/dtype.h"
#include "kernels/quant_pack.h"

namespace llama3::model {

size_t Matrix::bytes() const {
  if (format == kernels::WeightFormat::BF16) return static_cast<size_t>(rows * cols) * 2;
  return kernels::packed_bytes(format, rows, cols);
}

AlignedBuffer::AlignedBuffer(size_t bytes)
    : data_(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{64}))), size_(bytes) {}

void AlignedBuffer::Free::operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }

std::byte* ModelWeights::allocate_bytes(size_t n) {
  buffers.emplace_back(n);
  return buffers.back().data();
}

void matrix_row_f32(const Matrix& m, int64_t row, float* out) {
  if (m.format == kernels::WeightFormat::BF16) {
    const uint16_t* r = m.bf16() + row * m.cols;
    for (int64_t c = 0; c < m.cols; ++c) out[c] = bf16_to_f32(r[c]);
    return;
  }
  kernels::dequantize_packed_row({m.format, m.data, m.rows, m.cols}, row, {out, static_cast<size_t>(m.cols)});
}

}  // namespace llama3::model
