#pragma once
// ggml's tensor element types, as GGUF files name them by id. One table shared by the GGUF
// reader/writer (io) and the block-format math (core/quant_blocks): id, name, elements per block
// and bytes per block. Types a GGUF may hold but this engine cannot read are still named, so an
// error says "type IQ2_XS is not supported" rather than "unknown type 17".
#include <cstdint>
#include <optional>
#include <string_view>

namespace llama3 {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct GgmlTypeTraits {
  GgmlType type;
  std::string_view name;
  int64_t block_elements;  // elements per block (1 for plain types)
  int64_t block_bytes;     // bytes per block
};

// The traits of a known type id, or nullopt for an id ggml does not define (or removed).
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t id);
// Same, for a valid enum value (throws llama3::Error if the table lacks it).
GgmlTypeTraits ggml_traits(GgmlType type);
std::string_view ggml_type_name(GgmlType type);

}  // namespace llama3
