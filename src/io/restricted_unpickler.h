#pragma once
// Reads the data.pkl of a torch.save'd state dict without executing anything. Python's pickle is
// a small stack machine whose GLOBAL + REDUCE opcodes can call any Python function; here only
// the opcodes torch.save (protocol 2) emits for a dict of tensors are understood, GLOBAL is
// limited to an allow-list of torch rebuild functions and storage types, and "calling" one of
// those only records what tensor it would build. Anything else is a llama3::Error.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace llama3::io {

// One entry of the state dict: a contiguous row-major view into storage record data/<key>.
struct PickledTensor {
  std::string name;
  DType dtype = DType::F32;
  std::string storage_key;     // the archive entry <prefix>/data/<storage_key> holds the bytes
  int64_t storage_numel = 0;   // elements in that storage, as the pickle states it
  int64_t offset = 0;          // first element of this tensor inside the storage
  std::vector<int64_t> shape;  // numel(shape) + offset <= storage_numel (checked)
};

// `what` names the pickle in errors (e.g. "model.pth: archive/data.pkl"). The top-level object
// must be a dict or OrderedDict from string to tensor; nested dicts are rejected.
std::vector<PickledTensor> unpickle_state_dict(std::span<const std::byte> pickle,
                                               const std::string& what);

}  // namespace llama3::io
