#pragma once
// Copies a GGUF file with a few changes (a metadata value replaced, a tensor dropped, or given
// another type or dims), for the bad-input tests: each damaged model differs from a good one in
// exactly the way the test names. Built on our reader and writer (tests/io checks both against
// hand-made bytes and an independent parser). Header-only: tests/CMakeLists.txt compiles only
// *_test.cpp files of this folder.
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "io/gguf_file.h"
#include "io/gguf_writer.h"

namespace llama3::testing {

struct GgufEdit {
  struct Tensor {
    std::optional<GgmlType> type;
    std::optional<std::vector<int64_t>> dims;  // ggml order
  };
  std::map<std::string, std::string> strings;  // key -> new string value
  std::map<std::string, uint32_t> u32s;        // key -> new u32 value (whatever the old type)
  std::set<std::string> drop_tensors;
  std::map<std::string, Tensor> tensors;       // changed tensors get zero bytes of the new size
};

namespace detail {

// Every element of a number or bool array, as the writer's C++ element type.
template <typename T>
std::vector<T> array_of(const io::GgufValue& v) {
  std::vector<T> out;
  for (uint64_t i = 0; i < v.count(); ++i) {
    std::visit([&](auto x) { out.push_back(static_cast<T>(x)); }, v.element(i));
  }
  return out;
}

template <typename T>
void set_array(io::GgufWriter& w, std::string_view key, const io::GgufValue& v) {
  const std::vector<T> values = array_of<T>(v);
  w.set_array(key, std::span<const T>(values));
}

inline void set_bool_array(io::GgufWriter& w, std::string_view key, const io::GgufValue& v) {
  const std::vector<char> chars = array_of<char>(v);  // std::vector<bool> has no contiguous storage
  const std::unique_ptr<bool[]> values(new bool[chars.size()]);
  for (size_t i = 0; i < chars.size(); ++i) values[i] = chars[i] != 0;
  w.set_array(key, std::span<const bool>(values.get(), chars.size()));
}

inline void copy_value(io::GgufWriter& w, std::string_view key, const io::GgufValue& v) {
  using io::GgufType;
  auto number = [&]<typename T>(T) { return std::visit([](auto x) { return static_cast<T>(x); }, v.scalar()); };
  switch (v.type()) {
    case GgufType::U8: return w.set_u8(key, number(uint8_t{}));
    case GgufType::I8: return w.set_i8(key, number(int8_t{}));
    case GgufType::U16: return w.set_u16(key, number(uint16_t{}));
    case GgufType::I16: return w.set_i16(key, number(int16_t{}));
    case GgufType::U32: return w.set_u32(key, number(uint32_t{}));
    case GgufType::I32: return w.set_i32(key, number(int32_t{}));
    case GgufType::U64: return w.set_u64(key, number(uint64_t{}));
    case GgufType::I64: return w.set_i64(key, number(int64_t{}));
    case GgufType::F32: return w.set_f32(key, number(float{}));
    case GgufType::F64: return w.set_f64(key, number(double{}));
    case GgufType::BOOL: return w.set_bool(key, std::get<bool>(v.scalar()));
    case GgufType::STRING: return w.set_string(key, v.string());
    case GgufType::ARRAY: break;
  }
  switch (v.element_type()) {
    case GgufType::STRING: {
      const std::vector<std::string_view> strings = v.strings();
      return w.set_array(key, std::span<const std::string_view>(strings));
    }
    case GgufType::U8: return set_array<uint8_t>(w, key, v);
    case GgufType::I8: return set_array<int8_t>(w, key, v);
    case GgufType::U16: return set_array<uint16_t>(w, key, v);
    case GgufType::I16: return set_array<int16_t>(w, key, v);
    case GgufType::U32: return set_array<uint32_t>(w, key, v);
    case GgufType::I32: return set_array<int32_t>(w, key, v);
    case GgufType::U64: return set_array<uint64_t>(w, key, v);
    case GgufType::I64: return set_array<int64_t>(w, key, v);
    case GgufType::F32: return set_array<float>(w, key, v);
    case GgufType::F64: return set_array<double>(w, key, v);
    case GgufType::BOOL: return set_bool_array(w, key, v);
    case GgufType::ARRAY: break;
  }
  throw std::runtime_error("gguf_edit: cannot copy " + std::string(key) + " (array of arrays)");
}

}  // namespace detail

// Writes `dst`: `src` with `edit` applied (metadata in the same order, tensors too).
inline void write_edited_gguf(const std::filesystem::path& src, const std::filesystem::path& dst,
                              const GgufEdit& edit) {
  const io::GgufFile file(src);
  io::GgufWriter w(file.alignment());
  for (const std::string_view key : file.keys()) {
    const std::string k(key);
    if (key == io::kGgufAlignmentKey) continue;  // the writer's own
    if (const auto s = edit.strings.find(k); s != edit.strings.end()) {
      w.set_string(key, s->second);
    } else if (const auto u = edit.u32s.find(k); u != edit.u32s.end()) {
      w.set_u32(key, u->second);
    } else {
      detail::copy_value(w, key, file.value(key));
    }
  }
  for (const io::GgufTensor& t : file.tensors()) {
    if (edit.drop_tensors.count(t.name)) continue;
    const auto change = edit.tensors.find(t.name);
    if (change == edit.tensors.end()) {
      w.add_tensor(t.name, t.type, t.dims, t.data.size(),
                   [&t](std::span<std::byte> out) { std::memcpy(out.data(), t.data.data(), out.size()); });
      continue;
    }
    const GgmlType type = change->second.type.value_or(t.type);
    const std::vector<int64_t> dims = change->second.dims.value_or(t.dims);
    w.add_tensor(t.name, type, dims, io::gguf_tensor_bytes(type, dims, t.name),
                 [](std::span<std::byte> out) { std::memset(out.data(), 0, out.size()); });
  }
  w.write(dst);
}

}  // namespace llama3::testing
