#pragma once
// Matrix products with 8-bit (Q8_0) or 4-bit (Q4_0) weights in the packed layout of
// quant_pack.h and int8 activations (activation_quant.h): y = W x for a batch of x rows.
//
// For each (weight row n, batch row t), blocks b = 0, 1, 2, ... in order:
//   isum = sum_k u[k] * q[k] - o * sum(q)   (exact int32; u = the packed unsigned weight,
//                                            o = 128 for Q8_0, 8 for Q4_0)
//   acc  = fma(float(isum), d_w * d_a, acc)  (fp32, acc starts at 0; y = acc)
// Every ISA performs exactly these operations, so results are bitwise identical to the scalar
// reference, and a row's result never depends on the other rows of the batch.
//
// Kernels: 16 weight rows (one packed group, dword lane = row) x a tile of batch rows in
// registers; AVX-512 VNNI uses vpdpbusd, AVX2 vpmaddubsw + vpmaddwd (AVX-512 CPUs without VNNI
// use the AVX2 kernel). Batch rows are blocked so their int8 activations stay in L2 while each
// weight group is reused from cache, and weight groups are split over the threads.
#include <cstdint>
#include <span>

#include "kernels/activation_quant.h"
#include "kernels/quant_pack.h"

namespace llama3::kernels {

// y[t * ldy + n] = row n of W . row t of x, for t < x->rows(), n < w.rows.
struct QMatmulJob {
  PackedMatrix w;                           // Q8_0 or Q4_0
  const QuantizedActivations* x = nullptr;  // x->k() == w.cols
  float* y = nullptr;                       // fp32 [x->rows()][ldy]
  int64_t ldy = 0;                          // >= w.rows
};

// Throws llama3::Error naming the problem if a job is malformed.
void check_qmatmul_job(const QMatmulJob& job);

// All jobs in one parallel region (one fork-join): each job's row groups are split over the
// threads in proportion to their work, so q/k/v or gate/up products share one region.
void matmul_q(std::span<const QMatmulJob> jobs);
inline void matmul_q(const QMatmulJob& job) { matmul_q({&job, 1}); }

// Single-threaded: rows [row_begin, row_end) of one job with the active ISA's kernel. row_begin
// must be a multiple of 16 and row_end a multiple of 16 or w.rows (whole groups).
void matmul_q_rows(const QMatmulJob& job, int64_t row_begin, int64_t row_end);

// The per-ISA kernels behind matmul_q_rows (for tests and benchmarks; they assume a valid job).
void matmul_q_rows_scalar(const QMatmulJob& job, int64_t row_begin, int64_t row_end);
void matmul_q_rows_avx2(const QMatmulJob& job, int64_t row_begin, int64_t row_end);
void matmul_q_rows_avx512(const QMatmulJob& job, int64_t row_begin, int64_t row_end);  // needs VNNI

}  // namespace llama3::kernels
