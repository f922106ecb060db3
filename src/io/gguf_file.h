#pragma once
// Reader for GGUF v2/v3 (llama.cpp's single-file format): header, typed metadata, tensor infos,
// then the aligned tensor data. The file is memory-mapped; metadata values and tensor data are
// views into the map, valid while the GgufFile lives (moving it is fine). It knows nothing of
// Llama: which keys and tensors a model needs, and which ggml types the engine runs, is for the
// caller. Every inconsistency is a one-line Error naming the file (see docs/FORMATS.md).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/ggml_type.h"
#include "core/mapped_file.h"
#include "io/gguf_value.h"

namespace llama3::io {

class ByteReader;

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> dims;          // ggml order: dims[0] is the contiguous (innermost) one
  uint64_t offset = 0;                // from the start of the data section, as stored
  std::span<const std::byte> data;    // exactly the tensor's bytes, inside the map

  int64_t elements() const;  // checked against overflow when the file was read
};

class GgufFile {
 public:
  explicit GgufFile(const std::filesystem::path& path);  // throws Error naming file + problem

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section in the file
  const std::filesystem::path& path() const { return file_.path(); }
  std::span<const std::byte> bytes() const { return file_.bytes(); }

  // Metadata. Keys are in file order. Typed getters throw an Error naming the key when it is
  // absent, of another type, or its value does not fit; find_* return nullopt when absent.
  std::vector<std::string_view> keys() const;
  bool has(std::string_view key) const { return find_value(key) != nullptr; }
  const GgufValue* find_value(std::string_view key) const;
  const GgufValue& value(std::string_view key) const;
  GgufType type_of(std::string_view key) const { return value(key).type(); }

  std::string_view get_string(std::string_view key) const;
  uint64_t get_uint(std::string_view key) const;  // any integer type, value >= 0
  int64_t get_int(std::string_view key) const;    // any integer type, value <= INT64_MAX
  double get_float(std::string_view key) const;   // f32 or f64
  bool get_bool(std::string_view key) const;
  std::vector<std::string_view> get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;  // any integer element type
  std::vector<double> get_float_array(std::string_view key) const;  // f32 or f64 elements

  std::optional<std::string_view> find_string(std::string_view key) const;
  std::optional<uint64_t> find_uint(std::string_view key) const;
  std::optional<int64_t> find_int(std::string_view key) const;
  std::optional<double> find_float(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;
  std::optional<std::vector<std::string_view>> find_string_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> find_int_array(std::string_view key) const;
  std::optional<std::vector<double>> find_float_array(std::string_view key) const;

  // Tensors in file (tensor info) order.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* find(std::string_view name) const;  // nullptr if absent

 private:
  struct Entry {
    std::string_view key;  // into the map
    GgufValue value;
  };

  void parse();
  void read_metadata(ByteReader& reader, uint64_t count);
  std::vector<uint64_t> read_tensor_infos(ByteReader& reader, uint64_t count);  // byte sizes
  void place_tensors(std::span<const uint64_t> sizes);

  MappedFile file_;
  std::string what_;  // the path, as errors name it
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<Entry> entries_;
  std::unordered_map<std::string_view, size_t> entry_index_;  // keys view the map: stable on move
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace llama3::io
