#include "io/safetensors_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/error.h"
#include "io/byte_reader.h"
#include "io/checked_math.h"
#include "io/quote.h"

namespace llama3::io {
namespace {

using nlohmann::json;

// The reference implementation caps the header at 100 MB; a larger one is corrupt or hostile.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

std::optional<DType> parse_dtype(std::string_view s) {
  static constexpr std::pair<std::string_view, DType> kTable[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I64", DType::I64},
      {"I32", DType::I32}, {"I8", DType::I8},   {"U8", DType::U8},     {"BOOL", DType::BOOL}};
  for (const auto& [text, dtype] : kTable) {
    if (text == s) return dtype;
  }
  return std::nullopt;
}

std::string json_type(const json& j) {
  if (j.is_number_unsigned()) return "non-negative integer";
  if (j.is_number_integer()) return "negative integer";
  if (j.is_number_float()) return "non-integer number";
  return j.type_name();
}

// Parses the header, remembering the first key that occurs twice in one object: nlohmann keeps
// only the last value, which would hide a duplicated tensor name.
json parse_header(std::string_view text, const std::string& file) {
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  const json::parser_callback_t on_event = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && !duplicate) duplicate = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    fail("{}: safetensors header is not valid JSON: {}", file, e.what());
  }
  check(!duplicate, "{}: safetensors header has duplicate key {}", file,
        quote(duplicate.value_or("")));
  check(header.is_object(), "{}: safetensors header is a JSON {}, expected an object", file,
        header.type_name());
  return header;
}

uint64_t get_uint(const json& j, const std::string& file, const std::string& name,
                  std::string_view field) {
  check(j.is_number_unsigned(), "{}: tensor {}: {} holds a {}, expected a non-negative integer",
        file, quote(name), field, json_type(j));
  return j.get<uint64_t>();
}

struct Entry {
  TensorInfo info;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Entry parse_entry(const std::string& name, const json& j, const std::string& file) {
  check(j.is_object(), "{}: tensor {}: entry is a JSON {}, expected an object", file, quote(name),
        j.type_name());
  for (const auto& [key, _] : j.items()) {
    check(key == "dtype" || key == "shape" || key == "data_offsets",
          "{}: tensor {}: unknown field {}", file, quote(name), quote(key));
  }
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    check(j.contains(field), "{}: tensor {}: missing field '{}'", file, quote(name), field);
  }
  Entry e;
  e.info.name = name;

  const json& dtype = j.at("dtype");
  check(dtype.is_string(), "{}: tensor {}: dtype is a JSON {}, expected a string", file,
        quote(name), dtype.type_name());
  const auto parsed = parse_dtype(dtype.get_ref<const std::string&>());
  check(parsed.has_value(),
        "{}: tensor {}: unsupported dtype {} (supported: F32, F16, BF16, I64, I32, I8, U8, BOOL)",
        file, quote(name), quote(dtype.get_ref<const std::string&>()));
  e.info.dtype = *parsed;

  const json& shape = j.at("shape");
  check(shape.is_array(), "{}: tensor {}: shape is a JSON {}, expected an array", file,
        quote(name), shape.type_name());
  for (const json& d : shape) {
    const uint64_t v = get_uint(d, file, name, "a shape dimension");
    check(v <= static_cast<uint64_t>(INT64_MAX), "{}: tensor {}: shape dimension {} is too large",
          file, quote(name), v);
    e.info.shape.push_back(static_cast<int64_t>(v));
  }
  const auto numel = checked_numel(e.info.shape);
  const auto nbytes = numel ? checked_mul(*numel, dtype_size(e.info.dtype)) : std::nullopt;
  check(nbytes.has_value(), "{}: tensor {}: shape [{}] overflows the element count", file,
        quote(name), fmt::join(e.info.shape, ", "));

  const json& offsets = j.at("data_offsets");
  check(offsets.is_array() && offsets.size() == 2,
        "{}: tensor {}: data_offsets must be an array [begin, end]", file, quote(name));
  e.begin = get_uint(offsets[0], file, name, "data_offsets[0]");
  e.end = get_uint(offsets[1], file, name, "data_offsets[1]");
  check(e.begin <= e.end, "{}: tensor {}: data_offsets [{}, {}] has begin after end", file,
        quote(name), e.begin, e.end);
  check(e.end - e.begin == *nbytes,
        "{}: tensor {}: data_offsets [{}, {}] hold {} bytes but {} [{}] needs {}", file,
        quote(name), e.begin, e.end, e.end - e.begin, dtype_name(e.info.dtype),
        fmt::join(e.info.shape, ", "), *nbytes);
  return e;
}

std::map<std::string, std::string> parse_metadata(const json& j, const std::string& file) {
  check(j.is_object(), "{}: __metadata__ is a JSON {}, expected an object of strings", file,
        j.type_name());
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    check(value.is_string(), "{}: __metadata__ {} is a JSON {}, expected a string", file,
          quote(key), value.type_name());
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : file_(path) {
  const std::string name = path.string();
  ByteReader reader(file_.bytes(), name);
  check(file_.size() >= 8, "{}: file is {} bytes, too small for a safetensors header", name,
        file_.size());
  const uint64_t header_len = reader.u64();
  check(header_len <= reader.remaining(),
        "{}: safetensors header length {} is past the end of the file ({} bytes)", name,
        header_len, file_.size());
  check(header_len <= kMaxHeaderBytes, "{}: safetensors header length {} exceeds the {} byte limit",
        name, header_len, kMaxHeaderBytes);
  const json header = parse_header(reader.text(header_len), name);
  const auto data = file_.bytes().subspan(reader.position());

  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      metadata_ = parse_metadata(value, name);
    } else {
      entries.push_back(parse_entry(key, value, name));
    }
  }

  // The data section must be tiled exactly by the tensors, as the reference implementation
  // requires: no overlap (two names silently sharing bytes), no holes, nothing after the end.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const Entry& e : entries) {
    check(e.end <= data.size(),
          "{}: tensor {}: data_offsets [{}, {}] are past the end of the data ({} bytes)", name,
          quote(e.info.name), e.begin, e.end, data.size());
    check(e.begin >= covered, "{}: tensor {}: data_offsets [{}, {}] overlap tensor {} (ends at {})",
          name, quote(e.info.name), e.begin, e.end, quote(previous ? *previous : ""), covered);
    check(e.begin == covered, "{}: tensor {}: data bytes [{}, {}) belong to no tensor", name,
          quote(e.info.name), covered, e.begin);
    covered = e.end;
    previous = &e.info.name;
  }
  check(covered == data.size(), "{}: {} bytes after the last tensor belong to no tensor", name,
        data.size() - covered);

  tensors_.reserve(entries.size());
  for (Entry& e : entries) {
    e.info.data = data.subspan(e.begin, e.end - e.begin);
    index_.emplace(e.info.name, tensors_.size());
    tensors_.push_back(std::move(e.info));
  }
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace llama3::io
