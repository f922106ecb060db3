#include "model/precision.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace llama3::model {

using kernels::WeightFormat;

namespace {

constexpr MatrixPrecision kNative{true, WeightFormat::BF16};
constexpr MatrixPrecision kBf16{false, WeightFormat::BF16};
constexpr MatrixPrecision kQ8{false, WeightFormat::Q8_0};
constexpr MatrixPrecision kQ4{false, WeightFormat::Q4_0};

MatrixPrecision parse_matrix_precision(const std::string& key, const std::string& value) {
  if (value == "bf16") return kBf16;
  if (value == "q8") return kQ8;
  if (value == "q4") return kQ4;
  if (value == "native") return kNative;
  fail("--precision: \"{}\": \"{}\" is not one of bf16, q8, q4, native", key, value);
}

// The map's matrix entries by key, in the canonical order.
template <typename Map, typename Fn>
void for_each_entry(Map& m, Fn&& fn) {
  fn("wqkv", m.wqkv);
  fn("wo", m.wo);
  fn("ff1_3", m.ff1_3);
  fn("ff2", m.ff2);
  fn("lm_head", m.lm_head);
}

}  // namespace

std::string_view precision_name(MatrixPrecision p) {
  if (p.native) return "native";
  switch (p.format) {
    case WeightFormat::BF16: return "bf16";
    case WeightFormat::Q8_0: return "q8";
    case WeightFormat::Q4_0: return "q4";
  }
  return "?";
}

std::string PrecisionMap::to_json() const {
  nlohmann::ordered_json j;
  for_each_entry(*this, [&](const char* key, const MatrixPrecision& p) { j[key] = precision_name(p); });
  j["kv_cache"] = kernels::kv_dtype_name(kv_cache);
  return j.dump();
}

bool PrecisionMap::all_native() const {
  bool all = true;
  for_each_entry(*this, [&](const char*, const MatrixPrecision& p) { all = all && p.native; });
  return all;
}

PrecisionMap precision_mode(std::string_view mode) {
  PrecisionMap m;
  m.mode = std::string(mode);
  MatrixPrecision all;
  if (mode == "performance") {
    for_each_entry(m, [](const char*, MatrixPrecision& p) { p = kQ8; });
    m.ff1_3 = kQ4;
    return m;
  }
  if (mode == "accuracy") all = kQ8;
  else if (mode == "bf16") all = kBf16;
  else if (mode == "native") all = kNative;
  else fail("--optimizations {} is not one of: performance, accuracy, bf16, native", mode);
  for_each_entry(m, [&](const char*, MatrixPrecision& p) { p = all; });
  return m;
}

PrecisionMap make_precision(std::string_view mode, std::optional<std::string_view> overrides) {
  PrecisionMap m = precision_mode(mode);
  if (!overrides) return m;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(*overrides);
  } catch (const nlohmann::json::exception& e) {
    fail("--precision is not valid JSON: {}", e.what());
  }
  check(j.is_object(), "--precision must be a JSON object such as {{\"ff1_3\":\"q4\",\"lm_head\":\"q8\"}}");
  for (const auto& item : j.items()) {  // not a structured binding: the lambda below captures key
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    check(value.is_string(), "--precision: \"{}\" must be a string", key);
    const std::string v = value.get<std::string>();
    if (key == "kv_cache") {
      const auto kv = kernels::kv_dtype_from_name(v);
      check(kv.has_value(), "--precision: \"kv_cache\": \"{}\" is not one of bf16, f32, q8", v);
      m.kv_cache = *kv;
      continue;
    }
    bool known = false;
    for_each_entry(m, [&](const char* name, MatrixPrecision& p) {
      if (key == name) p = parse_matrix_precision(key, v), known = true;
    });
    check(known, "--precision: unknown key \"{}\" (keys: wqkv, wo, ff1_3, ff2, lm_head, kv_cache)", key);
  }
  m.mode += "+custom";
  return m;
}

}  // namespace llama3::model
