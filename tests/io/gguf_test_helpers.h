#pragma once
// Hand-built GGUF bytes for the reader and writer tests, written from the format description and
// independent of GgufWriter, so a test can lay out (or corrupt) any field byte by byte.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io_test_helpers.h"

namespace llama3::io::testing {

inline std::string gguf_str(std::string_view s) { return le64(s.size()) + std::string(s); }

// One metadata pair: key, type id, value bytes.
inline std::string gguf_kv(std::string_view key, uint32_t type, const std::string& value) {
  return gguf_str(key) + le32(type) + value;
}

// One tensor info: name, n_dims, dims, ggml type id, offset.
inline std::string gguf_tensor_info(std::string_view name, const std::vector<uint64_t>& dims,
                                    uint32_t type, uint64_t offset) {
  std::string out = gguf_str(name) + le32(dims.size());
  for (const uint64_t d : dims) out += le64(d);
  return out + le32(type) + le64(offset);
}

struct GgufBytes {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::vector<std::string> kvs;      // gguf_kv(...) each
  std::vector<std::string> tensors;  // gguf_tensor_info(...) each
  uint64_t alignment = 32;           // for the padding only: add a general.alignment kv to change it
  std::string data;                  // the data section, offsets as in the tensor infos

  std::string header() const {
    std::string out = magic + le32(version) + le64(tensors.size()) + le64(kvs.size());
    for (const auto& kv : kvs) out += kv;
    for (const auto& t : tensors) out += t;
    return out;
  }
  std::string build() const {
    std::string out = header();
    out.append((alignment - out.size() % alignment) % alignment, '\0');
    return out + data;
  }
};

}  // namespace llama3::io::testing
