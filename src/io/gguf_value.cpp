#include "io/gguf_value.h"

#include <bit>

#include "core/error.h"
#include "io/byte_reader.h"

namespace llama3::io {

namespace {

uint64_t load_le(const std::byte* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

GgufScalar decode_gguf_scalar(GgufType type, const std::byte* bytes) {
  const uint64_t raw = load_le(bytes, gguf_scalar_bytes(type));
  switch (type) {
    case GgufType::U8: case GgufType::U16: case GgufType::U32: case GgufType::U64:
      return raw;
    case GgufType::I8: return int64_t{static_cast<int8_t>(raw)};
    case GgufType::I16: return int64_t{static_cast<int16_t>(raw)};
    case GgufType::I32: return int64_t{static_cast<int32_t>(raw)};
    case GgufType::I64: return static_cast<int64_t>(raw);
    case GgufType::F32: return double{std::bit_cast<float>(static_cast<uint32_t>(raw))};
    case GgufType::F64: return std::bit_cast<double>(raw);
    case GgufType::BOOL: return raw != 0;
    case GgufType::STRING: case GgufType::ARRAY: break;
  }
  fail("gguf: a {} is not a scalar", gguf_type_name(type));
}

std::string GgufValue::type_name() const {
  if (type_ != GgufType::ARRAY) return std::string(gguf_type_name(type_));
  return "array of " + std::string(gguf_type_name(element_type_));
}

GgufScalar GgufValue::scalar() const {
  check(gguf_scalar_bytes(type_) != 0, "gguf: a {} value is not a number", type_name());
  check(payload_.size() == gguf_scalar_bytes(type_), "gguf: a {} value of {} bytes", type_name(),
        payload_.size());
  return decode_gguf_scalar(type_, payload_.data());
}

std::string_view GgufValue::string() const {
  check(type_ == GgufType::STRING, "gguf: a {} value is not a string", type_name());
  return {reinterpret_cast<const char*>(payload_.data()), payload_.size()};
}

GgufScalar GgufValue::element(uint64_t index) const {
  const size_t size = type_ == GgufType::ARRAY ? gguf_scalar_bytes(element_type_) : 0;
  check(size != 0, "gguf: a {} value is not an array of numbers", type_name());
  check(index < count_ && (index + 1) * size <= payload_.size(),
        "gguf: array index {} is out of range ({} elements)", index, count_);
  return decode_gguf_scalar(element_type_, payload_.data() + index * size);
}

std::vector<std::string_view> GgufValue::strings() const {
  check(type_ == GgufType::ARRAY && element_type_ == GgufType::STRING,
        "gguf: a {} value is not an array of strings", type_name());
  // The count was checked against the payload (8 bytes per string at least) when parsed.
  std::vector<std::string_view> out;
  out.reserve(count_);
  ByteReader reader(payload_, "gguf string array");
  for (uint64_t i = 0; i < count_; ++i) out.push_back(reader.text(reader.u64()));
  return out;
}

}  // namespace llama3::io
