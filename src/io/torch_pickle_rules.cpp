#include "io/torch_pickle_rules.h"

#include <fmt/format.h>

#include <optional>
#include <set>

#include "core/error.h"
#include "io/checked_math.h"
#include "io/quote.h"

namespace llama3::io::torch_rules {
namespace {

constexpr std::string_view kOrderedDict = "collections.OrderedDict";
constexpr std::string_view kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr std::string_view kRebuildParameter = "torch._utils._rebuild_parameter";
constexpr std::string_view kRebuildParameterWithState = "torch._utils._rebuild_parameter_with_state";
// torch >= 2 wraps tensors that carry Python attributes: _rebuild_from_type_v2(func, type, args,
// state). Plain Tensor and Parameter are the only types we let through it.
constexpr std::string_view kRebuildFromType = "torch._tensor._rebuild_from_type_v2";
constexpr std::string_view kTensorTypes[] = {"torch.Tensor", "torch.nn.parameter.Parameter"};

// torch.save names a storage by its legacy typed class; the class only tells the element type.
std::optional<DType> storage_dtype(std::string_view name) {
  static constexpr std::pair<std::string_view, DType> kTable[] = {
      {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16}, {"BFloat16Storage", DType::BF16},
      {"LongStorage", DType::I64},  {"IntStorage", DType::I32},  {"CharStorage", DType::I8},
      {"ByteStorage", DType::U8},   {"BoolStorage", DType::BOOL}};
  for (const auto& [text, dtype] : kTable) {
    if (text == name) return dtype;
  }
  return std::nullopt;
}

const PickleValue& arg(const std::vector<PickleValue*>& args, size_t i, PickleKind kind,
                       std::string_view function, const std::string& what) {
  const PickleValue& v = *args[i];
  check(v.kind == kind, "{}: argument {} of {} is {}, expected {}", what, i, function,
        pickle_kind_phrase(v.kind), pickle_kind_phrase(kind));
  return v;
}

std::vector<int64_t> int_tuple(const PickleValue& tuple, std::string_view field,
                               const std::string& what) {
  std::vector<int64_t> out;
  out.reserve(tuple.items.size());
  for (const PickleValue* item : tuple.items) {
    check(item->kind == PickleKind::Int, "{}: tensor {} holds {}, expected ints", what, field,
          pickle_kind_phrase(item->kind));
    out.push_back(item->integer);
  }
  return out;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
// [, metadata]): we accept only row-major contiguous views, which the engine can use in place.
PickleValue* rebuild_tensor(PickleArena& arena, const std::vector<PickleValue*>& args,
                            const std::string& what) {
  check(args.size() == 6 || args.size() == 7, "{}: {} takes 6 or 7 arguments, got {}", what,
        kRebuildTensor, args.size());
  const PickleValue& storage = arg(args, 0, PickleKind::Storage, kRebuildTensor, what);
  const int64_t offset = arg(args, 1, PickleKind::Int, kRebuildTensor, what).integer;
  const auto shape = int_tuple(arg(args, 2, PickleKind::Tuple, kRebuildTensor, what), "size", what);
  const auto stride =
      int_tuple(arg(args, 3, PickleKind::Tuple, kRebuildTensor, what), "stride", what);
  arg(args, 4, PickleKind::Bool, kRebuildTensor, what);  // requires_grad: irrelevant here

  check(offset >= 0, "{}: tensor has negative storage offset {}", what, offset);
  const auto numel = checked_numel(shape);
  check(numel.has_value(), "{}: tensor size ({}) is negative or overflows", what,
        fmt::join(shape, ", "));
  check(stride.size() == shape.size(), "{}: tensor size ({}) and stride ({}) differ in length",
        what, fmt::join(shape, ", "), fmt::join(stride, ", "));
  // torch's own rule: dimensions of size 1 may have any stride, an empty tensor is contiguous.
  if (*numel > 0) {
    int64_t expected = 1;
    for (size_t i = shape.size(); i-- > 0;) {
      check(shape[i] == 1 || stride[i] == expected,
            "{}: tensor of size ({}) has stride ({}), not row-major contiguous; save "
            "t.contiguous() instead",
            what, fmt::join(shape, ", "), fmt::join(stride, ", "));
      expected *= shape[i];  // cannot overflow: the product is numel
    }
  }
  const auto end = checked_add(static_cast<uint64_t>(offset), *numel);
  check(end && *end <= static_cast<uint64_t>(storage.numel),
        "{}: tensor of size ({}) at offset {} runs past its storage {} of {} elements", what,
        fmt::join(shape, ", "), offset, quote(storage.text), storage.numel);

  PickleValue* tensor = arena.make(PickleKind::Tensor);
  tensor->storage = &storage;
  tensor->integer = offset;
  tensor->shape = shape;
  return tensor;
}

}  // namespace

PickleValue* global(PickleArena& arena, std::string_view module, std::string_view name,
                    const std::string& what) {
  const std::string full = fmt::format("{}.{}", module, name);
  const bool is_storage = module == "torch" && name.ends_with("Storage");
  if (is_storage) {
    const auto dtype = storage_dtype(name);
    check(dtype.has_value(),
          "{}: unsupported tensor storage type {} (supported: float32, float16, bfloat16, int64, "
          "int32, int8, uint8, bool)",
          what, quote(full));
    PickleValue* v = arena.make(PickleKind::Global);
    v->text = full;
    v->dtype = *dtype;
    return v;
  }
  bool allowed = full == kOrderedDict || full == kRebuildTensor || full == kRebuildParameter ||
                 full == kRebuildParameterWithState || full == kRebuildFromType;
  for (const auto t : kTensorTypes) allowed = allowed || full == t;
  check(allowed, "{}: forbidden pickle global {}", what, quote(full));
  PickleValue* v = arena.make(PickleKind::Global);
  v->text = full;
  return v;
}

PickleValue* call(PickleArena& arena, const PickleValue& callable, const PickleValue& args,
                  const std::string& what) {
  check(callable.kind == PickleKind::Global, "{}: REDUCE calls {}, not an allowed global", what,
        pickle_kind_phrase(callable.kind));
  check(args.kind == PickleKind::Tuple, "{}: REDUCE arguments are {}, expected a tuple", what,
        pickle_kind_phrase(args.kind));
  const std::string& fn = callable.text;
  const auto& a = args.items;
  if (fn == kOrderedDict) {
    check(a.empty(), "{}: {} is only supported with no arguments", what, kOrderedDict);
    return arena.make(PickleKind::Dict);
  }
  if (fn == kRebuildTensor) return rebuild_tensor(arena, a, what);
  if (fn == kRebuildParameter || fn == kRebuildParameterWithState) {
    const size_t arity = fn == kRebuildParameter ? 3 : 4;
    check(a.size() == arity, "{}: {} takes {} arguments, got {}", what, fn, arity, a.size());
    arg(a, 0, PickleKind::Tensor, fn, what);
    return a[0];
  }
  if (fn == kRebuildFromType) {
    check(a.size() == 4, "{}: {} takes 4 arguments, got {}", what, fn, a.size());
    const PickleValue& inner = arg(a, 0, PickleKind::Global, fn, what);
    const PickleValue& type = arg(a, 1, PickleKind::Global, fn, what);
    const PickleValue& inner_args = arg(a, 2, PickleKind::Tuple, fn, what);
    check(inner.text == kRebuildTensor, "{}: {} wraps {}, only {} is supported", what, fn,
          inner.text, kRebuildTensor);
    bool plain = false;
    for (const auto t : kTensorTypes) plain = plain || type.text == t;
    check(plain, "{}: {} rebuilds a {}, only plain tensors and parameters are supported", what, fn,
          type.text);
    return rebuild_tensor(arena, inner_args.items, what);
  }
  fail("{}: global {} cannot be called", what, fn);
}

PickleValue* persistent_load(PickleArena& arena, const PickleValue& pid, const std::string& what) {
  const auto& p = pid.items;
  check(pid.kind == PickleKind::Tuple && p.size() == 5 && p[0]->kind == PickleKind::String &&
            p[0]->text == "storage",
        "{}: persistent id is not ('storage', type, key, location, numel)", what);
  const PickleValue& type = *p[1];
  check(type.kind == PickleKind::Global && type.text.starts_with("torch.") &&
            type.text.ends_with("Storage"),
        "{}: persistent id names {}, expected a torch storage type", what,
        pickle_kind_phrase(type.kind));
  check(p[2]->kind == PickleKind::String, "{}: storage key is {}, expected a str", what,
        pickle_kind_phrase(p[2]->kind));
  check(p[3]->kind == PickleKind::String, "{}: storage location is {}, expected a str", what,
        pickle_kind_phrase(p[3]->kind));
  check(p[4]->kind == PickleKind::Int && p[4]->integer >= 0,
        "{}: storage {} size is not a non-negative int", what, quote(p[2]->text));
  PickleValue* storage = arena.make(PickleKind::Storage);
  storage->dtype = type.dtype;
  storage->text = p[2]->text;
  storage->numel = p[4]->integer;
  return storage;
}

void build(const PickleValue& object, const PickleValue& state, const std::string& what) {
  check(object.kind == PickleKind::Dict || object.kind == PickleKind::Tensor,
        "{}: BUILD sets the state of {}, only dicts and tensors are supported", what,
        pickle_kind_phrase(object.kind));
  (void)state;  // OrderedDict._metadata (module versions) and Parameter attributes: not needed
}

std::vector<PickledTensor> state_dict(const PickleValue& root, const std::string& what) {
  check(root.kind == PickleKind::Dict, "{}: the checkpoint holds {}, expected a state dict",
        what, pickle_kind_phrase(root.kind));
  std::vector<PickledTensor> out;
  std::set<std::string, std::less<>> seen;
  for (size_t i = 0; i + 1 < root.items.size(); i += 2) {
    const PickleValue& key = *root.items[i];
    const PickleValue& value = *root.items[i + 1];
    check(key.kind == PickleKind::String, "{}: state dict key is {}, expected a str", what,
          pickle_kind_phrase(key.kind));
    check(value.kind != PickleKind::Dict,
          "{}: entry {} is a nested dict; only flat state dicts are supported (save "
          "checkpoint[{}] itself)",
          what, quote(key.text), quote(key.text));
    check(value.kind == PickleKind::Tensor, "{}: entry {} is {}, not a tensor", what,
          quote(key.text), pickle_kind_phrase(value.kind));
    check(seen.insert(key.text).second, "{}: tensor {} appears twice", what, quote(key.text));
    PickledTensor t;
    t.name = key.text;
    t.dtype = value.storage->dtype;
    t.storage_key = value.storage->text;
    t.storage_numel = value.storage->numel;
    t.offset = value.integer;
    t.shape = value.shape;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace llama3::io::torch_rules
