#pragma once
// The torch-specific half of the restricted unpickler: which globals a torch.save'd state dict
// may name, what "calling" them builds (a description of a tensor, never a Python call), and how
// the final object becomes a list of tensors. The generic stack machine is in
// restricted_unpickler.cpp; each function here throws llama3::Error prefixed with `what`.
#include <string>
#include <string_view>
#include <vector>

#include "io/pickle_value.h"
#include "io/restricted_unpickler.h"

namespace llama3::io::torch_rules {

// GLOBAL module name: an allowed rebuild function, tensor type or storage type, else an error.
PickleValue* global(PickleArena& arena, std::string_view module, std::string_view name,
                    const std::string& what);

// REDUCE: callable(*args) for the allowed callables.
PickleValue* call(PickleArena& arena, const PickleValue& callable, const PickleValue& args,
                  const std::string& what);

// BINPERSID: ('storage', storage_type, key, location, numel) -> a Storage value.
PickleValue* persistent_load(PickleArena& arena, const PickleValue& pid, const std::string& what);

// BUILD: setting state is only allowed (and ignored) on dicts (OrderedDict's _metadata) and
// tensors (Parameter state).
void build(const PickleValue& object, const PickleValue& state, const std::string& what);

// The unpickled object as a flat state dict.
std::vector<PickledTensor> state_dict(const PickleValue& root, const std::string& what);

}  // namespace llama3::io::torch_rules
