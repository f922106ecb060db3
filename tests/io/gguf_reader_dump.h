#pragma once
// What our GGUF reader sees in a file, as JSON in the form tests/io/gguf_dump.cjs prints for
// @huggingface/gguf's parser: an independent reader to compare ours (and our writer's files)
// with. Integers as decimal strings, floats as numbers, strings and bools as themselves.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "io/gguf_file.h"

namespace llama3::io::testing {

inline nlohmann::json scalar_json(GgufType type, const GgufScalar& value) {
  if (type == GgufType::BOOL) return std::get<bool>(value);
  if (gguf_is_float(type)) return std::get<double>(value);
  return std::visit([](auto v) { return fmt::format("{}", v); }, value);
}

// What our reader sees, in gguf_dump.cjs's form.
inline nlohmann::json reader_dump(const GgufFile& file) {
  using nlohmann::json;
  json metadata = json::array();
  for (const std::string_view key : file.keys()) {
    const GgufValue& v = file.value(key);
    json entry = {{"key", key}, {"type", static_cast<uint32_t>(v.type())}};
    if (v.type() == GgufType::STRING) {
      entry["value"] = v.string();
    } else if (v.type() != GgufType::ARRAY) {
      entry["value"] = scalar_json(v.type(), v.scalar());
    } else {
      entry["sub_type"] = static_cast<uint32_t>(v.element_type());
      json values = json::array();
      if (v.element_type() == GgufType::STRING) {
        for (const auto s : v.strings()) values.push_back(s);
      } else {
        for (uint64_t i = 0; i < v.count(); ++i) values.push_back(scalar_json(v.element_type(), v.element(i)));
      }
      entry["value"] = values;
    }
    metadata.push_back(entry);
  }
  json tensors = json::array();
  for (const GgufTensor& t : file.tensors()) {
    json dims = json::array();
    for (const int64_t d : t.dims) dims.push_back(std::to_string(d));
    tensors.push_back({{"name", t.name}, {"dims", dims}, {"type", static_cast<uint32_t>(t.type)},
                       {"offset", std::to_string(t.offset)}});
  }
  return {{"version", file.version()},
          {"tensor_count", std::to_string(file.tensors().size())},
          {"kv_count", std::to_string(file.keys().size())},
          {"data_offset", std::to_string(file.data_offset())},
          {"metadata", metadata},
          {"tensors", tensors}};
}

}  // namespace llama3::io::testing
