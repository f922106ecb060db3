#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "core/dtype.h"
#include "core/parallel.h"
#include "kernels/cpu_features.h"

namespace llama3::kernels {

void matmul_bf16_rows_scalar(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  for (int64_t b = 0; b < job.batch; ++b) {
    const float* x = job.x + b * job.ldx;
    for (int64_t n = row_begin; n < row_end; ++n) {
      const uint16_t* w = job.w + n * job.k_dim;
      float acc = 0.0f;
      for (int64_t k = 0; k < job.k_dim; ++k) acc += bf16_to_f32(w[k]) * x[k];
      job.y[b * job.ldy + n] = acc;
    }
  }
}

void matmul_bf16_rows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  switch (active_isa()) {
    case Isa::Avx512: return matmul_bf16_rows_avx512(job, row_begin, row_end);
    case Isa::Avx2: return matmul_bf16_rows_avx2(job, row_begin, row_end);
    case Isa::Scalar: return matmul_bf16_rows_scalar(job, row_begin, row_end);
  }
}

void matmul_bf16(std::span<const MatmulJob> jobs) {
  // Concatenate the jobs' rows into one index space; each thread maps its slice back to jobs.
  int64_t total = 0;
  for (const auto& job : jobs) total += job.rows;
  constexpr size_t kRowGroup = 16;  // keeps SIMD row groups whole inside one thread
  parallel_for(static_cast<size_t>(total), [&](size_t begin, size_t end) {
    int64_t offset = 0;
    for (const auto& job : jobs) {
      const int64_t lo = std::max<int64_t>(static_cast<int64_t>(begin) - offset, 0);
      const int64_t hi = std::min<int64_t>(static_cast<int64_t>(end) - offset, job.rows);
      if (lo < hi) matmul_bf16_rows(job, lo, hi);
      offset += job.rows;
    }
  }, kRowGroup);
}

}  // namespace llama3::kernels
