#include "kernels/quant_pack.h"

#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"

namespace llama3::kernels {

namespace {

constexpr size_t kQ8Bytes = 34, kQ4Bytes = 18;

uint8_t* group_scales(std::byte* data, WeightFormat f, int64_t cols, int64_t group) {
  return reinterpret_cast<uint8_t*>(data + group * packed_group_bytes(f, cols));
}
const uint8_t* group_scales(const std::byte* data, WeightFormat f, int64_t cols, int64_t group) {
  return reinterpret_cast<const uint8_t*>(data + group * packed_group_bytes(f, cols));
}

// Where row `row`'s 4-byte chunk i of block b lives in a packed matrix, relative to its group.
int64_t chunk_offset(WeightFormat f, int64_t cols, int64_t row, int64_t b, int64_t i) {
  return packed_scale_bytes(cols) + b * packed_block_quant_bytes(f) + i * 64 + (row % kGroupRows) * 4;
}

void check_quantized(WeightFormat format, const char* what) {
  check(format == WeightFormat::Q8_0 || format == WeightFormat::Q4_0, "{}: {} weights are not in ggml blocks", what,
        weight_format_name(format));
}

void check_row(const PackedMatrix& m, int64_t row, size_t out_size, size_t wanted, const char* what) {
  check(m.data != nullptr, "{}: packed matrix has no data", what);
  check(row >= 0 && row < m.rows, "{}: row {} is outside a {}-row matrix", what, row, m.rows);
  check(out_size == wanted, "{}: output holds {} elements, the row needs {}", what, out_size, wanted);
}

void pack_group(WeightFormat f, const uint8_t* ggml, int64_t rows, int64_t cols, int64_t group, std::byte* out) {
  const int64_t nb = cols / kQuantBlock;
  const size_t block_bytes = f == WeightFormat::Q8_0 ? kQ8Bytes : kQ4Bytes;
  const int64_t chunks = packed_block_quant_bytes(f) / 64;
  uint8_t* scales = group_scales(out, f, cols, group);
  std::memset(scales, 0, static_cast<size_t>(packed_scale_bytes(cols)));
  uint8_t* quants = scales + packed_scale_bytes(cols);
  const uint8_t pad = f == WeightFormat::Q8_0 ? 0x80 : 0x88;  // value 0 in either format
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t r = 0; r < kGroupRows; ++r) {
      const int64_t row = group * kGroupRows + r;
      uint8_t* q = quants + b * packed_block_quant_bytes(f) + r * 4;
      if (row >= rows) {
        for (int64_t i = 0; i < chunks; ++i) std::memset(q + i * 64, pad, 4);
        continue;
      }
      const uint8_t* block = ggml + (row * nb + b) * block_bytes;
      std::memcpy(scales + (b * kGroupRows + r) * 2, block, 2);
      for (int64_t i = 0; i < chunks; ++i) {
        std::memcpy(q + i * 64, block + 2 + i * 4, 4);
        if (f == WeightFormat::Q8_0) {
          for (int j = 0; j < 4; ++j) q[i * 64 + j] ^= 0x80;  // int8 q -> q + 128
        }
      }
    }
  }
}

}  // namespace

size_t ggml_block_bytes(WeightFormat format) {
  check_quantized(format, "ggml_block_bytes");
  return format == WeightFormat::Q8_0 ? kQ8Bytes : kQ4Bytes;
}

void check_packed_shape(WeightFormat format, int64_t rows, int64_t cols) {
  check(rows >= 1 && cols >= 1, "{} matrix shape {}x{}: both dimensions must be positive", weight_format_name(format),
        rows, cols);
  if (format != WeightFormat::BF16) {
    check(cols % kQuantBlock == 0, "{} matrix shape {}x{}: columns must be a multiple of {} (the block size)",
          weight_format_name(format), rows, cols, kQuantBlock);
  }
}

size_t packed_bytes(WeightFormat format, int64_t rows, int64_t cols) {
  check_packed_shape(format, rows, cols);
  if (format == WeightFormat::BF16) return static_cast<size_t>(rows * cols * 2);
  return static_cast<size_t>(packed_groups(rows) * packed_group_bytes(format, cols));
}

void pack_ggml_rows(WeightFormat format, std::span<const std::byte> ggml_blocks, int64_t rows, int64_t cols,
                    std::span<std::byte> out) {
  check_quantized(format, "pack_ggml_rows");
  const size_t wanted_out = packed_bytes(format, rows, cols);
  const size_t wanted_in = static_cast<size_t>(rows * (cols / kQuantBlock)) * ggml_block_bytes(format);
  check(ggml_blocks.size() == wanted_in, "pack_ggml_rows: {} {}x{} needs {} bytes of blocks, got {}",
        weight_format_name(format), rows, cols, wanted_in, ggml_blocks.size());
  check(out.size() == wanted_out, "pack_ggml_rows: {} {}x{} packs into {} bytes, the output holds {}",
        weight_format_name(format), rows, cols, wanted_out, out.size());
  const auto* in = reinterpret_cast<const uint8_t*>(ggml_blocks.data());
  parallel_for(static_cast<size_t>(packed_groups(rows)), [&](size_t g0, size_t g1) {
    for (size_t g = g0; g < g1; ++g) pack_group(format, in, rows, cols, static_cast<int64_t>(g), out.data());
  });
}

void unpack_row_ggml(const PackedMatrix& m, int64_t row, std::span<std::byte> ggml_blocks_out) {
  check_quantized(m.format, "unpack_row_ggml");
  check_packed_shape(m.format, m.rows, m.cols);
  const int64_t nb = m.cols / kQuantBlock;
  const size_t block_bytes = ggml_block_bytes(m.format);
  check_row(m, row, ggml_blocks_out.size(), static_cast<size_t>(nb) * block_bytes, "unpack_row_ggml");
  const uint8_t* group = group_scales(m.data, m.format, m.cols, row / kGroupRows);
  auto* out = reinterpret_cast<uint8_t*>(ggml_blocks_out.data());
  const int64_t chunks = packed_block_quant_bytes(m.format) / 64;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* block = out + b * block_bytes;
    std::memcpy(block, group + (b * kGroupRows + row % kGroupRows) * 2, 2);
    for (int64_t i = 0; i < chunks; ++i) {
      std::memcpy(block + 2 + i * 4, group + chunk_offset(m.format, m.cols, row, b, i), 4);
      if (m.format == WeightFormat::Q8_0) {
        for (int j = 0; j < 4; ++j) block[2 + i * 4 + j] ^= 0x80;
      }
    }
  }
}

void dequantize_packed_row(const PackedMatrix& m, int64_t row, std::span<float> out) {
  check_packed_shape(m.format, m.rows, m.cols);
  check_row(m, row, out.size(), static_cast<size_t>(m.cols), "dequantize_packed_row");
  if (m.format == WeightFormat::BF16) {
    const std::byte* src = m.data + row * m.cols * 2;
    for (int64_t k = 0; k < m.cols; ++k) {
      uint16_t v;
      std::memcpy(&v, src + k * 2, 2);
      out[k] = bf16_to_f32(v);
    }
    return;
  }
  const uint8_t* group = group_scales(m.data, m.format, m.cols, row / kGroupRows);
  for (int64_t b = 0; b < m.cols / kQuantBlock; ++b) {
    uint16_t half;
    std::memcpy(&half, group + (b * kGroupRows + row % kGroupRows) * 2, 2);
    const float d = f16_to_f32(half);
    float* o = out.data() + b * kQuantBlock;
    for (int64_t i = 0; i < packed_block_quant_bytes(m.format) / 64; ++i) {
      const uint8_t* q = group + chunk_offset(m.format, m.cols, row, b, i);
      for (int j = 0; j < 4; ++j) {
        if (m.format == WeightFormat::Q8_0) {
          o[i * 4 + j] = static_cast<float>(static_cast<int>(q[j]) - 128) * d;
        } else {
          o[i * 4 + j] = static_cast<float>((q[j] & 15) - 8) * d;
          o[16 + i * 4 + j] = static_cast<float>((q[j] >> 4) - 8) * d;
        }
      }
    }
  }
}

}  // namespace llama3::kernels
