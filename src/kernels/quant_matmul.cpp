#include "kernels/quant_matmul.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu_features.h"

namespace llama3::kernels {

void check_qmatmul_job(const QMatmulJob& job) {
  const PackedMatrix& w = job.w;
  check(w.format == WeightFormat::Q8_0 || w.format == WeightFormat::Q4_0,
        "matmul_q: {} weights need matmul_bf16, not the integer product", weight_format_name(w.format));
  check_packed_shape(w.format, w.rows, w.cols);
  check(w.data != nullptr, "matmul_q: {} {}x{} weight matrix has no data", weight_format_name(w.format), w.rows,
        w.cols);
  check(job.x != nullptr, "matmul_q: no activations");
  check(job.x->k() == w.cols, "matmul_q: activations have k = {}, the {}x{} weights need {}", job.x->k(), w.rows,
        w.cols, w.cols);
  check(job.x->rows() == 0 || job.y != nullptr, "matmul_q: no output");
  check(job.ldy >= w.rows, "matmul_q: output row stride {} is less than the {} weight rows", job.ldy, w.rows);
}

void matmul_q_rows_scalar(const QMatmulJob& job, int64_t row_begin, int64_t row_end) {
  const PackedMatrix& w = job.w;
  const QuantizedActivations& x = *job.x;
  const int64_t nb = w.cols / kQuantBlock;
  const bool q8 = w.format == WeightFormat::Q8_0;
  const int32_t offset = q8 ? 128 : 8;
  const int64_t quant_bytes = packed_block_quant_bytes(w.format);
  for (int64_t t = 0; t < x.rows(); ++t) {
    for (int64_t n = row_begin; n < row_end; ++n) {
      const auto* group = reinterpret_cast<const uint8_t*>(w.data) + n / kGroupRows * packed_group_bytes(w.format, w.cols);
      const uint8_t* quants = group + packed_scale_bytes(w.cols) + n % kGroupRows * 4;
      float acc = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* u = quants + b * quant_bytes;
        const int8_t* a = x.q(t) + b * kQuantBlock;
        int32_t dot = 0;
        for (int i = 0; i < 8; ++i) {
          for (int j = 0; j < 4; ++j) {
            if (q8) {
              dot += u[i * 64 + j] * a[i * 4 + j];
            } else if (i < 4) {  // low nibbles: k = 4i + j, high nibbles: k = 16 + 4i + j
              dot += (u[i * 64 + j] & 15) * a[i * 4 + j] + (u[i * 64 + j] >> 4) * a[16 + i * 4 + j];
            }
          }
        }
        const int32_t isum = dot - offset * x.sums(t)[b];
        uint16_t half;
        std::memcpy(&half, group + (b * kGroupRows + n % kGroupRows) * 2, 2);
        const float scale = f16_to_f32(half) * x.scales(t)[b];
        acc = std::fma(static_cast<float>(isum), scale, acc);
      }
      job.y[t * job.ldy + n] = acc;
    }
  }
}

namespace {

void dispatch_rows(const QMatmulJob& job, int64_t row_begin, int64_t row_end) {
  switch (active_isa()) {
    case Isa::Avx512:
      if (has_avx512_vnni()) return matmul_q_rows_avx512(job, row_begin, row_end);
      return matmul_q_rows_avx2(job, row_begin, row_end);
    case Isa::Avx2: return matmul_q_rows_avx2(job, row_begin, row_end);
    case Isa::Scalar: return matmul_q_rows_scalar(job, row_begin, row_end);
  }
}

int64_t ceil_div_nonneg(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

}  // namespace

void matmul_q_rows(const QMatmulJob& job, int64_t row_begin, int64_t row_end) {
  check_qmatmul_job(job);
  check(row_begin >= 0 && row_begin <= row_end && row_end <= job.w.rows && row_begin % kGroupRows == 0 &&
            (row_end % kGroupRows == 0 || row_end == job.w.rows),
        "matmul_q_rows: rows [{}, {}) of {} are not whole groups of {}", row_begin, row_end, job.w.rows, kGroupRows);
  dispatch_rows(job, row_begin, row_end);
}

void matmul_q(std::span<const QMatmulJob> jobs) {
  // Validate before the parallel region: an exception must not escape an OpenMP thread.
  int64_t total = 0, groups = 0;
  for (const auto& job : jobs) {
    check_qmatmul_job(job);
    total += packed_groups(job.w.rows) * (job.w.cols / kQuantBlock) * job.x->rows();
    groups += packed_groups(job.w.rows);
  }
  if (total == 0) return;
  // Thread t takes the groups whose work starts in [total * t / T, total * (t + 1) / T), the work
  // of a group being its blocks x batch rows, so jobs of different K or batch still split evenly.
  // (Handing out smaller chunks dynamically was measured slower on an idle machine: at batch 8
  // and 32 by ~10%, from lost cache reuse and prefetch ramp-ups at every chunk start.)
  const int64_t threads = std::min<int64_t>(thread_count(), groups);
  parallel_for(static_cast<size_t>(threads), [&](size_t t_begin, size_t t_end) {
    for (auto t = static_cast<int64_t>(t_begin); t < static_cast<int64_t>(t_end); ++t) {
      const int64_t lo = total * t / threads, hi = total * (t + 1) / threads;
      int64_t start = 0;  // work before the current job
      for (const auto& job : jobs) {
        const int64_t cost = (job.w.cols / kQuantBlock) * job.x->rows();
        const int64_t job_groups = packed_groups(job.w.rows);
        if (cost > 0) {  // the groups whose work starts in [lo, hi)
          const int64_t g0 = std::min(ceil_div_nonneg(lo - start, cost), job_groups);
          const int64_t g1 = std::min(ceil_div_nonneg(hi - start, cost), job_groups);
          if (g0 < g1) dispatch_rows(job, g0 * kGroupRows, std::min(g1 * kGroupRows, job.w.rows));
          start += job_groups * cost;
        }
      }
    }
  });
}

}  // namespace llama3::kernels
