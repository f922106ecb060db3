#pragma once
// Matrix products with bf16 weights and fp32 activations: y = W x for a batch of x rows.
// Every weight row is read from memory once per call for the whole batch (batched decode reads
// each weight once per step), and the rows of W are split across the threads.
#include <cstdint>
#include <span>

namespace llama3::kernels {

// One product: y[b * ldy + n] = sum_k w[n * k_dim + k] * x[b * ldx + k] for b < batch, n < rows.
struct MatmulJob {
  const uint16_t* w = nullptr;  // bf16 [rows][k_dim], row-major
  int64_t rows = 0;
  int64_t k_dim = 0;
  const float* x = nullptr;  // fp32 [batch][ldx]
  int64_t ldx = 0;
  float* y = nullptr;  // fp32 [batch][ldy]
  int64_t ldy = 0;
  int64_t batch = 0;
};

// Single-threaded: rows [row_begin, row_end) of one job, with the active ISA's kernel.
void matmul_bf16_rows(const MatmulJob& job, int64_t row_begin, int64_t row_end);

// All jobs in one parallel region, rows of all jobs split evenly over the threads (so the
// q/k/v or gate/up products of a layer cost one fork-join, not three).
void matmul_bf16(std::span<const MatmulJob> jobs);
inline void matmul_bf16(const MatmulJob& job) { matmul_bf16({&job, 1}); }

// The per-ISA kernels behind matmul_bf16_rows (declared for tests and benchmarks).
void matmul_bf16_rows_scalar(const MatmulJob& job, int64_t row_begin, int64_t row_end);
void matmul_bf16_rows_avx2(const MatmulJob& job, int64_t row_begin, int64_t row_end);
void matmul_bf16_rows_avx512(const MatmulJob& job, int64_t row_begin, int64_t row_end);

}  // namespace llama3::kernels
