// Rows of any readable ggml type to floats, Q8_0 blocks or bf16.
#include <algorithm>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant_blocks.h"

namespace llama3 {

namespace {

// Checks that `bytes` hold exactly the blocks of `elements` elements of `type`.
void check_row(GgmlType type, size_t bytes, size_t elements) {
  check(can_dequantize(type), "cannot dequantize ggml type {}", ggml_type_name(type));
  const GgmlTypeTraits t = ggml_traits(type);
  const auto block_elements = static_cast<size_t>(t.block_elements);
  const auto block_bytes = static_cast<size_t>(t.block_bytes);
  check(elements % block_elements == 0, "a {} row of {} elements is not a whole number of {}-element blocks",
        t.name, elements, block_elements);
  check(bytes == elements / block_elements * block_bytes, "a {} row of {} elements takes {} bytes, got {}",
        t.name, elements, elements / block_elements * block_bytes, bytes);
}

// Blocks are copied out of the byte span: a mapped file gives no alignment guarantee.
template <typename Block>
void dequantize_blocks(std::span<const std::byte> src, std::span<float> dst) {
  for (size_t b = 0; b < dst.size() / Block::kElements; ++b) {
    Block block;
    std::memcpy(&block, src.data() + b * sizeof(Block), sizeof(Block));
    dequantize_block(block, dst.subspan(b * Block::kElements).template first<Block::kElements>());
  }
}

template <typename Block>
void blocks_to_q8_0(std::span<const std::byte> src, std::span<BlockQ8_0> dst) {
  for (size_t b = 0; b < dst.size(); ++b) {
    Block block;
    std::memcpy(&block, src.data() + b * sizeof(Block), sizeof(Block));
    dst[b] = to_q8_0(block);
  }
}

uint16_t load_u16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Calls fn(first_element, values) over the dequantized row in chunks of whole source blocks
// (and of whole 32-element blocks where the row allows), so no caller holds a whole row.
template <typename Fn>
void for_each_dequantized_chunk(GgmlType type, std::span<const std::byte> src, size_t elements, Fn&& fn) {
  const GgmlTypeTraits t = ggml_traits(type);
  const auto block_elements = static_cast<size_t>(t.block_elements);
  const auto block_bytes = static_cast<size_t>(t.block_bytes);
  float chunk[kSuperBlockElements];
  const size_t step = std::max(block_elements, kSuperBlockElements);
  for (size_t first = 0; first < elements; first += step) {
    const size_t n = std::min(step, elements - first);
    const std::span<float> values(chunk, n);
    dequantize_row(type, src.subspan(first / block_elements * block_bytes, n / block_elements * block_bytes),
                   values);
    fn(first, std::span<const float>(values));
  }
}

}  // namespace

bool can_dequantize(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

void dequantize_row(GgmlType type, std::span<const std::byte> src, std::span<float> dst) {
  check_row(type, src.size(), dst.size());
  switch (type) {
    case GgmlType::F32:
      if (!dst.empty()) std::memcpy(dst.data(), src.data(), src.size());
      return;
    case GgmlType::F16:
      for (size_t i = 0; i < dst.size(); ++i) dst[i] = f16_to_f32(load_u16(src.data() + 2 * i));
      return;
    case GgmlType::BF16:
      for (size_t i = 0; i < dst.size(); ++i) dst[i] = bf16_to_f32(load_u16(src.data() + 2 * i));
      return;
    case GgmlType::Q8_0: return dequantize_blocks<BlockQ8_0>(src, dst);
    case GgmlType::Q4_0: return dequantize_blocks<BlockQ4_0>(src, dst);
    case GgmlType::Q4_1: return dequantize_blocks<BlockQ4_1>(src, dst);
    case GgmlType::Q5_0: return dequantize_blocks<BlockQ5_0>(src, dst);
    case GgmlType::Q5_1: return dequantize_blocks<BlockQ5_1>(src, dst);
    case GgmlType::Q2_K: return dequantize_blocks<BlockQ2_K>(src, dst);
    case GgmlType::Q3_K: return dequantize_blocks<BlockQ3_K>(src, dst);
    case GgmlType::Q4_K: return dequantize_blocks<BlockQ4_K>(src, dst);
    case GgmlType::Q5_K: return dequantize_blocks<BlockQ5_K>(src, dst);
    case GgmlType::Q6_K: return dequantize_blocks<BlockQ6_K>(src, dst);
    default: fail("cannot dequantize ggml type {}", ggml_type_name(type));  // check_row already refused it
  }
}

bool converts_exactly_to_q8_0(GgmlType type) {
  return type == GgmlType::Q8_0 || type == GgmlType::Q4_0 || type == GgmlType::Q5_0;
}

void convert_row_to_q8_0(GgmlType type, std::span<const std::byte> src, std::span<BlockQ8_0> dst) {
  const size_t elements = dst.size() * kBlockElements;
  check_row(type, src.size(), elements);
  switch (type) {
    case GgmlType::Q8_0:
      if (!dst.empty()) std::memcpy(dst.data(), src.data(), src.size());
      return;
    case GgmlType::Q4_0: return blocks_to_q8_0<BlockQ4_0>(src, dst);
    case GgmlType::Q5_0: return blocks_to_q8_0<BlockQ5_0>(src, dst);
    default:
      for_each_dequantized_chunk(type, src, elements, [&](size_t first, std::span<const float> values) {
        quantize_row_q8_0(values, dst.subspan(first / kBlockElements, values.size() / kBlockElements));
      });
  }
}

void convert_row_to_bf16(GgmlType type, std::span<const std::byte> src, std::span<uint16_t> dst) {
  check_row(type, src.size(), dst.size());
  if (type == GgmlType::BF16) {  // a copy keeps NaN payloads f32_to_bf16 would quiet
    if (!dst.empty()) std::memcpy(dst.data(), src.data(), src.size());
    return;
  }
  for_each_dequantized_chunk(type, src, dst.size(), [&](size_t first, std::span<const float> values) {
    std::transform(values.begin(), values.end(), dst.begin() + static_cast<ptrdiff_t>(first), f32_to_bf16);
  });
}

}  // namespace llama3
