#pragma once
// fp32 activations quantized to int8 blocks of 32 for the integer matrix products
// (quant_matmul.h): once per product input, per row of the batch (a row's result never depends
// on the other rows in the batch).
//
// Per row and block of 32 values: d = amax / 127 (fp32; 0 for an all-zero block),
// q = round-to-nearest-even(x / d) clamped to [-127, 127], and the block's integer sum of q
// (the kernels subtract offset * sum to undo the unsigned weight encoding). Every ISA computes
// exactly these operations, so q, d and the sums are bitwise the same on every machine.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace llama3::kernels {

// Reusable scratch: resize() only allocates when the shape outgrows what it holds.
// Row layout (row_stride() bytes, a multiple of 64, 64-byte aligned):
//   [q: k int8][d: k/32 float][sum: k/32 int32][padding]
class QuantizedActivations {
 public:
  QuantizedActivations() = default;
  QuantizedActivations(int64_t rows, int64_t k) { resize(rows, k); }

  // Throws llama3::Error unless rows >= 0, k >= 32 and k % 32 == 0.
  void resize(int64_t rows, int64_t k);

  int64_t rows() const { return rows_; }
  int64_t k() const { return k_; }
  int64_t blocks() const { return k_ / 32; }
  int64_t row_stride() const { return stride_; }  // bytes from one row to the next

  const int8_t* q(int64_t row) const { return reinterpret_cast<const int8_t*>(row_ptr(row)); }
  int8_t* q(int64_t row) { return reinterpret_cast<int8_t*>(row_ptr(row)); }
  const float* scales(int64_t row) const { return reinterpret_cast<const float*>(row_ptr(row) + k_); }
  float* scales(int64_t row) { return reinterpret_cast<float*>(row_ptr(row) + k_); }
  const int32_t* sums(int64_t row) const { return reinterpret_cast<const int32_t*>(row_ptr(row) + k_ + 4 * blocks()); }
  int32_t* sums(int64_t row) { return reinterpret_cast<int32_t*>(row_ptr(row) + k_ + 4 * blocks()); }

 private:
  struct AlignedFree {
    void operator()(std::byte* p) const;
  };
  std::byte* row_ptr(int64_t row) const { return data_.get() + row * stride_; }

  std::unique_ptr<std::byte[], AlignedFree> data_;
  size_t capacity_ = 0;
  int64_t rows_ = 0, k_ = 0, stride_ = 0;
};

// Quantizes rows x k fp32 values (row r at x + r * ldx) into `out` (resized to rows x k).
// Rows are split over the threads when there are many.
void quantize_activations(const float* x, int64_t ldx, int64_t rows, int64_t k, QuantizedActivations& out);

// Rows [row_begin, row_end) of `out` (already resized), single-threaded, with the active ISA;
// and the per-ISA versions behind it (for tests and benchmarks).
void quantize_activation_rows(const float* x, int64_t ldx, QuantizedActivations& out, int64_t row_begin,
                              int64_t row_end);
void quantize_activation_rows_scalar(const float* x, int64_t ldx, QuantizedActivations& out, int64_t row_begin,
                                     int64_t row_end);
void quantize_activation_rows_avx2(const float* x, int64_t ldx, QuantizedActivations& out, int64_t row_begin,
                                   int64_t row_end);
void quantize_activation_rows_avx512(const float* x, int64_t ldx, QuantizedActivations& out, int64_t row_begin,
                                     int64_t row_end);

}  // namespace llama3::kernels
