#pragma once
// One GGUF metadata value, as a view of its bytes in the mapped file. Nothing is decoded or
// copied until asked: a Llama 3 vocabulary is 128k strings and 280k merges, and a reader that
// only wants the architecture name should not pay for them. GgufFile validated the bytes (string
// lengths, counts, bool values) before handing out a GgufValue.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/gguf_type.h"

namespace llama3::io {

// A decoded number: unsigned types give uint64_t, signed ones int64_t, f32/f64 double.
using GgufScalar = std::variant<uint64_t, int64_t, double, bool>;

class GgufValue {
 public:
  // `payload`: a scalar's bytes, a string's bytes (without its length), or an array's elements
  // (for a string array, each still prefixed by its u64 length).
  GgufValue(GgufType type, std::span<const std::byte> payload,
            GgufType element_type = GgufType::U8, uint64_t count = 0)
      : type_(type), element_type_(element_type), count_(count), payload_(payload) {}

  GgufType type() const { return type_; }
  GgufType element_type() const { return element_type_; }  // arrays only
  uint64_t count() const { return count_; }                 // arrays only
  std::span<const std::byte> payload() const { return payload_; }
  std::string type_name() const;  // "u32", "string", "array of string", ...

  // Each throws Error when the value is not of the kind asked for.
  GgufScalar scalar() const;                    // a number or bool
  std::string_view string() const;              // a string
  GgufScalar element(uint64_t index) const;     // an element of a number or bool array
  std::vector<std::string_view> strings() const;  // the elements of a string array

 private:
  GgufType type_;
  GgufType element_type_;
  uint64_t count_;
  std::span<const std::byte> payload_;
};

// Decodes one little-endian number of `type` (a scalar type, not STRING/ARRAY) at `bytes`.
GgufScalar decode_gguf_scalar(GgufType type, const std::byte* bytes);

}  // namespace llama3::io
