#include "kernels/activation_quant.h"

#include <cmath>
#include <new>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/activation_quant_block.h"
#include "kernels/cpu_features.h"

namespace llama3::kernels {

void QuantizedActivations::AlignedFree::operator()(std::byte* p) const {
  ::operator delete[](p, std::align_val_t{64});
}

void QuantizedActivations::resize(int64_t rows, int64_t k) {
  check(rows >= 0, "quantized activations: {} rows", rows);
  check(k >= 32 && k % 32 == 0, "quantized activations: k = {} must be a positive multiple of 32 (the block size)",
        k);
  const int64_t stride = (k + 8 * (k / 32) + 63) / 64 * 64;
  const size_t bytes = static_cast<size_t>(rows * stride);
  if (bytes > capacity_) {
    data_.reset(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{64})));
    capacity_ = bytes;
  }
  rows_ = rows;
  k_ = k;
  stride_ = stride;
}

void quantize_activation_rows_scalar(const float* x, int64_t ldx, QuantizedActivations& out, int64_t row_begin,
                                     int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* xr = x + r * ldx;
    for (int64_t b = 0; b < out.blocks(); ++b) {
      const float* xb = xr + b * 32;
      float amax = 0.0f;
      for (int k = 0; k < 32; ++k) amax = max_like_simd(amax, std::fabs(xb[k]));
      const float d = amax / 127.0f;
      const float divisor = d != 0.0f ? d : 1.0f;  // an all-zero block stays zero
      int32_t sum = 0;
      int8_t* q = out.q(r) + b * 32;
      for (int k = 0; k < 32; ++k) {
        q[k] = static_cast<int8_t>(std::nearbyint(clamp_q(xb[k] / divisor)));
        sum += q[k];
      }
      out.scales(r)[b] = d;
      out.sums(r)[b] = sum;
    }
  }
}

void quantize_activation_rows(const float* x, int64_t ldx, QuantizedActivations& out, int64_t row_begin,
                              int64_t row_end) {
  switch (active_isa()) {
    case Isa::Avx512: return quantize_activation_rows_avx512(x, ldx, out, row_begin, row_end);
    case Isa::Avx2: return quantize_activation_rows_avx2(x, ldx, out, row_begin, row_end);
    case Isa::Scalar: return quantize_activation_rows_scalar(x, ldx, out, row_begin, row_end);
  }
}

void quantize_activations(const float* x, int64_t ldx, int64_t rows, int64_t k, QuantizedActivations& out) {
  out.resize(rows, k);
  check(rows == 0 || x != nullptr, "quantize_activations: no input");
  check(ldx >= k, "quantize_activations: row stride {} is less than k = {}", ldx, k);
  // A fork-join costs a few microseconds: only worth it for a batch (a row of k = 2048 takes ~1 us).
  const size_t min_rows = static_cast<size_t>(std::max<int64_t>(1, 16384 / k));
  if (static_cast<size_t>(rows) < 2 * min_rows) return quantize_activation_rows(x, ldx, out, 0, rows);
  parallel_for(static_cast<size_t>(rows), [&](size_t r0, size_t r1) {
    quantize_activation_rows(x, ldx, out, static_cast<int64_t>(r0), static_cast<int64_t>(r1));
  }, min_rows);
}

}  // namespace llama3::kernels
