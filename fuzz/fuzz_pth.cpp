// PyTorch checkpoints (consolidated.00.pth): the zip reader, the restricted unpickler, and the
// two together. The first byte picks: a whole .pth file, a zip archive alone, or a data.pkl alone.
// Properties: zip entries lie inside the archive; every unpickled tensor fits its storage
// (offset + numel <= storage numel, as the header promises); a checkpoint's tensors lie inside
// the file and match their shapes.
#include <vector>

#include "core/dtype.h"
#include "fuzz_support.h"
#include "io/pth_file.h"
#include "io/restricted_unpickler.h"
#include "io/zip_archive.h"

using namespace llama3;

namespace {

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::span<const uint8_t> rest(data + 1, size - 1);
  const auto bytes = std::as_bytes(rest);
  switch (data[0] % 3) {
    case 0: {
      std::optional<io::PthFile> file;
      if (!fuzz::accepts([&] { file.emplace(fuzz::write_scratch("consolidated.00.pth", rest)); })) break;
      for (const io::TensorInfo& t : file->tensors()) {
        fuzz::require(t.data.size() == static_cast<size_t>(t.numel()) * dtype_size(t.dtype), "size does not match shape");
        fuzz::require(t.data.size() <= rest.size(), "tensor larger than the file");
        fuzz::require(file->find(t.name) != nullptr, "a listed tensor is not found");
      }
      break;
    }
    case 1: {
      std::optional<io::ZipArchive> zip;
      if (!fuzz::accepts([&] { zip.emplace(bytes, "fuzz.zip"); })) break;
      for (const io::ZipEntry& e : zip->entries()) {
        fuzz::require(e.offset <= bytes.size() && e.size <= bytes.size() - e.offset, "entry outside the archive");
        fuzz::require(fuzz::inside(zip->data(e), bytes), "entry data outside the archive");
      }
      break;
    }
    default: {
      std::vector<io::PickledTensor> tensors;
      if (!fuzz::accepts([&] { tensors = io::unpickle_state_dict(bytes, "fuzz: data.pkl"); })) break;
      for (const io::PickledTensor& t : tensors) {
        for (int64_t d : t.shape) fuzz::require(d >= 0, "negative dimension");
        fuzz::require(t.offset >= 0 && t.offset + numel(t.shape) <= t.storage_numel, "tensor outside its storage");
      }
    }
  }
  return 0;
}
