#pragma once
// Overflow-checked arithmetic for sizes that come from files: a shape of [2^40, 2^40] must be an
// error, not a wrapped-around small number that then passes a bounds check.
#include <cstdint>
#include <optional>
#include <span>

namespace llama3::io {

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Number of elements of `shape`, or nullopt if a dimension is negative or the product does not
// fit in int64 (the type TensorInfo uses).
inline std::optional<uint64_t> checked_numel(std::span<const int64_t> shape) {
  uint64_t n = 1;
  for (const int64_t d : shape) {
    if (d < 0) return std::nullopt;
    const auto m = checked_mul(n, static_cast<uint64_t>(d));
    if (!m || *m > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    n = *m;
  }
  return n;
}

}  // namespace llama3::io
