#pragma once
// The values the restricted unpickler can build. They live in an arena owned by the unpickler and
// refer to each other by plain non-owning pointers: a pickle may share one object between many
// places (memo) or even make a list contain itself, which an ownership tree could not express
// and reference counting would leak.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace llama3::io {

enum class PickleKind : uint8_t {
  None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor
};

inline std::string_view pickle_kind_name(PickleKind kind) {
  switch (kind) {
    case PickleKind::None: return "None";
    case PickleKind::Bool: return "bool";
    case PickleKind::Int: return "int";
    case PickleKind::Float: return "float";
    case PickleKind::String: return "str";
    case PickleKind::Tuple: return "tuple";
    case PickleKind::List: return "list";
    case PickleKind::Dict: return "dict";
    case PickleKind::Global: return "global";
    case PickleKind::Storage: return "storage";
    case PickleKind::Tensor: return "tensor";
  }
  return "?";
}

// "an int", "a list", "None": for error messages.
inline std::string pickle_kind_phrase(PickleKind kind) {
  if (kind == PickleKind::None) return "None";
  if (kind == PickleKind::Int) return "an int";
  return "a " + std::string(pickle_kind_name(kind));
}

struct PickleValue {
  PickleKind kind = PickleKind::None;
  int64_t integer = 0;               // Int, Bool; Tensor: storage offset in elements
  double real = 0;                   // Float
  std::string text;                  // String; Global: "module.name"; Storage: record key
  std::vector<PickleValue*> items;   // Tuple, List; Dict: key0, value0, key1, value1, ...
  DType dtype = DType::F32;          // Storage
  int64_t numel = 0;                 // Storage: elements
  const PickleValue* storage = nullptr;  // Tensor: the Storage it views
  std::vector<int64_t> shape;        // Tensor
};

// Owns every value of one unpickling run, up to a fixed count so a hostile pickle cannot
// exhaust memory with cheap opcodes.
class PickleArena {
 public:
  PickleArena(size_t max_values, std::string what)
      : max_values_(max_values), what_(std::move(what)) {}
  PickleValue* make(PickleKind kind) {
    check(values_.size() < max_values_, "{}: pickle builds more than {} objects", what_,
          max_values_);
    values_.push_back(std::make_unique<PickleValue>());
    values_.back()->kind = kind;
    return values_.back().get();
  }

 private:
  size_t max_values_;
  std::string what_;
  std::vector<std::unique_ptr<PickleValue>> values_;
};

}  // namespace llama3::io
