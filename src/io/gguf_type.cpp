#include "io/gguf_type.h"

#include "core/error.h"
#include "io/checked_math.h"

namespace llama3::io {

namespace {

struct TypeInfo {
  std::string_view name;
  size_t bytes;
};

// Indexed by the type id.
constexpr TypeInfo kTypes[] = {
    {"u8", 1}, {"i8", 1},     {"u16", 2},   {"i16", 2},  {"u32", 4}, {"i32", 4}, {"f32", 4},
    {"bool", 1}, {"string", 0}, {"array", 0}, {"u64", 8}, {"i64", 8}, {"f64", 8},
};

}  // namespace

std::optional<GgufType> gguf_type_from_id(uint32_t id) {
  if (id >= std::size(kTypes)) return std::nullopt;
  return static_cast<GgufType>(id);
}

std::string_view gguf_type_name(GgufType type) { return kTypes[static_cast<uint32_t>(type)].name; }

size_t gguf_scalar_bytes(GgufType type) { return kTypes[static_cast<uint32_t>(type)].bytes; }

bool gguf_is_integer(GgufType type) {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
    case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64:
      return true;
    default:
      return false;
  }
}

bool gguf_is_float(GgufType type) { return type == GgufType::F32 || type == GgufType::F64; }

uint64_t gguf_tensor_bytes(GgmlType type, std::span<const int64_t> dims, std::string_view what) {
  const GgmlTypeTraits traits = ggml_traits(type);
  check(!dims.empty() && dims.size() <= kGgufMaxDims, "{} has {} dimensions (must be 1 to {})",
        what, dims.size(), kGgufMaxDims);
  for (size_t i = 0; i < dims.size(); ++i) {
    check(dims[i] > 0, "{} has dimension {} of size {} (must be positive)", what, i, dims[i]);
  }
  const auto elements = checked_numel(dims);
  check(elements.has_value(), "{} has {} dimensions whose product overflows int64", what,
        dims.size());
  check(dims[0] % traits.block_elements == 0,
        "{} has type {} with blocks of {} elements, but its first dimension is {}", what,
        traits.name, traits.block_elements, dims[0]);
  const auto bytes = checked_mul(*elements / traits.block_elements, traits.block_bytes);
  check(bytes && *bytes <= static_cast<uint64_t>(INT64_MAX),
        "{} is too large: its byte size overflows int64", what);
  return *bytes;
}

}  // namespace llama3::io
