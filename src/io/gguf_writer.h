#pragma once
// Writes a GGUF v3 file: metadata in insertion order, tensor infos with aligned offsets, then the
// tensors' bytes. A tensor's bytes come from a callback run while writing, one tensor at a time,
// so converting an 8 GB model never holds it in memory. The file is written as `path.tmp` and
// renamed at the end: a failed write never leaves a half file under the real name.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/ggml_type.h"
#include "io/gguf_type.h"

namespace llama3::io {

class GgufWriter {
 public:
  // Writes exactly the tensor's bytes into the span it is given (sized by add_tensor).
  using Fill = std::function<void(std::span<std::byte>)>;

  // `alignment`: a power of two; written as general.alignment when not the default 32.
  explicit GgufWriter(uint32_t alignment = kGgufDefaultAlignment);

  // Metadata. Each throws Error on an empty or repeated key; general.alignment is the
  // constructor's.
  void set_u8(std::string_view key, uint8_t value);
  void set_i8(std::string_view key, int8_t value);
  void set_u16(std::string_view key, uint16_t value);
  void set_i16(std::string_view key, int16_t value);
  void set_u32(std::string_view key, uint32_t value);
  void set_i32(std::string_view key, int32_t value);
  void set_u64(std::string_view key, uint64_t value);
  void set_i64(std::string_view key, int64_t value);
  void set_f32(std::string_view key, float value);
  void set_f64(std::string_view key, double value);
  void set_bool(std::string_view key, bool value);
  void set_string(std::string_view key, std::string_view value);
  // Arrays: the element type follows the C++ type (int32_t -> i32, float -> f32, ...).
  void set_array(std::string_view key, std::span<const uint8_t> values);
  void set_array(std::string_view key, std::span<const int8_t> values);
  void set_array(std::string_view key, std::span<const uint16_t> values);
  void set_array(std::string_view key, std::span<const int16_t> values);
  void set_array(std::string_view key, std::span<const uint32_t> values);
  void set_array(std::string_view key, std::span<const int32_t> values);
  void set_array(std::string_view key, std::span<const uint64_t> values);
  void set_array(std::string_view key, std::span<const int64_t> values);
  void set_array(std::string_view key, std::span<const float> values);
  void set_array(std::string_view key, std::span<const double> values);
  void set_array(std::string_view key, std::span<const bool> values);
  void set_array(std::string_view key, std::span<const std::string_view> values);
  void set_array(std::string_view key, std::span<const std::string> values);

  // A tensor of `type` with `dims` in ggml order (dims[0] contiguous). `byte_size` must be what
  // type and dims need; `fill` runs during write(). Throws Error on a bad or repeated name
  // (llama.cpp reads names of at most 63 bytes), bad dims, or a byte_size that does not match.
  void add_tensor(std::string_view name, GgmlType type, std::span<const int64_t> dims,
                  uint64_t byte_size, Fill fill);

  // Throws Error (naming the file) when the file cannot be written; an exception from a fill
  // callback propagates. Either way `path` is left untouched and `path.tmp` is removed.
  void write(const std::filesystem::path& path) const;

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> dims;
    uint64_t byte_size;
    Fill fill;
  };

  void add_entry(std::string_view key, GgufType type, std::string_view encoded_value);
  template <typename T>
  void add_array(std::string_view key, GgufType element, std::span<const T> values);

  uint32_t alignment_;
  std::string metadata_;  // the encoded key-value pairs, in insertion order
  uint64_t metadata_count_ = 0;
  std::unordered_set<std::string> keys_;
  std::vector<PendingTensor> tensors_;
  std::unordered_set<std::string> tensor_names_;
};

}  // namespace llama3::io
