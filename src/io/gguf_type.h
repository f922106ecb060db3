#pragma once
// The GGUF container's own vocabulary, shared by the reader and the writer: metadata value type
// ids, the fixed constants of the format, and the byte size of a tensor of a ggml type (the
// element types themselves live in core/ggml_type.h).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/ggml_type.h"

namespace llama3::io {

// Metadata value type ids as stored in the file (gguf.md, "gguf_metadata_value_type").
enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr uint32_t kGgufVersion = 3;          // what the writer emits
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr size_t kGgufMaxDims = 4;
inline constexpr std::string_view kGgufAlignmentKey = "general.alignment";

std::optional<GgufType> gguf_type_from_id(uint32_t id);
std::string_view gguf_type_name(GgufType type);  // "u8", "f32", "string", "array", ...
size_t gguf_scalar_bytes(GgufType type);         // 0 for STRING and ARRAY (variable size)
bool gguf_is_integer(GgufType type);
bool gguf_is_float(GgufType type);

// Bytes of a tensor of `type` with `dims` in ggml order (dims[0] contiguous). Throws Error,
// prefixed with `what` (e.g. "model.gguf: tensor 'x'"), unless there are 1..4 dims, each
// positive, dims[0] a multiple of the type's block size, and the element and byte counts fit
// in int64.
uint64_t gguf_tensor_bytes(GgmlType type, std::span<const int64_t> dims, std::string_view what);

}  // namespace llama3::io
