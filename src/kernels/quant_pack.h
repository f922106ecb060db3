#pragma once
// Weight matrices in ggml's 8-bit (Q8_0) and 4-bit (Q4_0) blocks, rearranged once into the layout
// the integer kernels (quant_matmul.h) stream: 16 rows interleaved, so one 64-byte vector holds
// 4 consecutive k values of each of 16 rows (dword lane r = row r) and a dot product needs no
// horizontal sums.
//
// ggml blocks (32 columns each): Q8_0 = fp16 d + 32 int8 q, value q * d (34 bytes);
// Q4_0 = fp16 d + 16 bytes qs, element j in the low nibble of qs[j], element j + 16 in the high
// nibble, value (nibble - 8) * d (18 bytes).
//
// Packed layout: ceil(rows / 16) groups of 16 rows, each packed_group_bytes() long, back to back
// (a group's bytes are contiguous, so a thread streams its rows from one place). Within a group,
// with nb = cols / 32 blocks:
//   scales: nb x 16 fp16, block b's row r at [b * 16 + r], zero-padded to a multiple of 64 bytes;
//   quants: nb blocks of packed_block_quant_bytes() (Q8_0: 8 vectors, Q4_0: 4 vectors of 64 bytes):
//     Q8_0: byte [i * 64 + r * 4 + j] = uint8(q[r][4i + j] + 128)   (i < 8, j < 4; +128 makes the
//           weight the unsigned operand of vpdpbusd, the activation block sum corrects for it);
//     Q4_0: byte [i * 64 + r * 4 + j] = row r's ggml qs[4i + j]   (i < 4: low nibble = k 4i + j,
//           high nibble = k 16 + 4i + j; packing is a copy of 4-byte chunks).
// Rows past `rows` in the last group have scale 0 and quants of value 0. Every vector is 64-byte
// aligned when the data is (the kernels load unaligned, so alignment only affects speed).
//
// BF16 "packed" matrices are plain row-major bf16 [rows][cols] (the matmul_bf16 layout).
#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/weight_format.h"

namespace llama3::kernels {

struct PackedMatrix {
  WeightFormat format = WeightFormat::Q8_0;
  const std::byte* data = nullptr;  // packed_bytes(format, rows, cols) bytes
  int64_t rows = 0;
  int64_t cols = 0;
};

inline constexpr int64_t kQuantBlock = 32;  // columns per block
inline constexpr int64_t kGroupRows = 16;   // rows per interleaved group

// Bytes of one ggml block (34 for Q8_0, 18 for Q4_0); throws for BF16.
size_t ggml_block_bytes(WeightFormat format);

// Layout arithmetic of quantized formats (cols a multiple of 32).
constexpr int64_t packed_block_quant_bytes(WeightFormat f) { return f == WeightFormat::Q4_0 ? 256 : 512; }
constexpr int64_t packed_scale_bytes(int64_t cols) { return (cols / kQuantBlock * 32 + 63) / 64 * 64; }
constexpr int64_t packed_group_bytes(WeightFormat f, int64_t cols) {
  return packed_scale_bytes(cols) + cols / kQuantBlock * packed_block_quant_bytes(f);
}
constexpr int64_t packed_groups(int64_t rows) { return (rows + kGroupRows - 1) / kGroupRows; }

// Throws llama3::Error unless rows >= 1, cols >= 1 and (quantized formats) cols % 32 == 0.
void check_packed_shape(WeightFormat format, int64_t rows, int64_t cols);

// Bytes of a packed matrix (checks the shape).
size_t packed_bytes(WeightFormat format, int64_t rows, int64_t cols);

// Packs rows x cols/32 ggml blocks (row-major, as a GGUF tensor stores them) into `out`
// (packed_bytes long). Lossless; multithreaded over row groups. Quantized formats only.
void pack_ggml_rows(WeightFormat format, std::span<const std::byte> ggml_blocks, int64_t rows, int64_t cols,
                    std::span<std::byte> out);

// The inverse of pack_ggml_rows for one row: cols/32 ggml blocks, byte for byte as packed.
void unpack_row_ggml(const PackedMatrix& m, int64_t row, std::span<std::byte> ggml_blocks_out);

// One row as fp32 (embedding lookup): Q8_0 q * d, Q4_0 (nibble - 8) * d, BF16 widened.
void dequantize_packed_row(const PackedMatrix& m, int64_t row, std::span<float> out);

}  // namespace llama3::kernels
