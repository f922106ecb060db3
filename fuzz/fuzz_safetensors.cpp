// safetensors: a file (header length, JSON header, data) and a folder's
// model.safetensors.index.json. The first byte picks which; the rest is the file.
// Properties: every tensor's bytes lie inside the file and match its shape and dtype; a file
// that parses, written again by our writer (names, dtypes, shapes, bytes, metadata) reads back
// the same.
#include <filesystem>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "fuzz_support.h"
#include "io/safetensors_file.h"
#include "io/safetensors_folder.h"
#include "io/safetensors_writer.h"

using namespace llama3;

namespace {

void check_file(const std::filesystem::path& path) {
  std::optional<io::SafetensorsFile> file;
  if (!fuzz::accepts([&] { file.emplace(path); })) return;
  const MappedFile whole(path);
  std::vector<io::TensorToWrite> again;
  for (const io::TensorInfo& t : file->tensors()) {
    fuzz::require(t.data.size() == static_cast<size_t>(t.numel()) * dtype_size(t.dtype), "size does not match shape");
    fuzz::require(t.data.size() <= whole.bytes().size(), "tensor larger than the file");
    fuzz::require(file->find(t.name) == &t, "find() does not return the tensor");
    again.push_back({t.name, t.dtype, t.shape, t.data});
  }
  const std::filesystem::path copy = fuzz::scratch_dir() / "again.safetensors";
  io::write_safetensors(copy, again, file->metadata());
  std::optional<io::SafetensorsFile> reread;
  if (!fuzz::accepts([&] { reread.emplace(copy); })) fuzz::finding("our own writer's file is rejected");
  fuzz::require(reread->tensors().size() == again.size(), "round trip: tensor count");
  fuzz::require(reread->metadata() == file->metadata(), "round trip: metadata");
  for (const io::TensorToWrite& t : again) {
    const io::TensorInfo* r = reread->find(t.name);
    fuzz::require(r && r->dtype == t.dtype && r->shape == t.shape, "round trip: a tensor's name, dtype or shape");
    fuzz::require(std::equal(r->data.begin(), r->data.end(), t.data.begin(), t.data.end()), "round trip: bytes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::span<const uint8_t> rest(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    check_file(fuzz::write_scratch("model.safetensors", rest));
  } else {
    // A folder with the index and no shards beside it but one small valid one ("a.safetensors").
    const std::filesystem::path dir = fuzz::scratch_dir() / "folder";
    std::filesystem::create_directories(dir);
    std::filesystem::remove(dir / "model.safetensors");
    const std::filesystem::path index = dir / "model.safetensors.index.json";
    std::filesystem::rename(fuzz::write_scratch("index.json", rest), index);
    if (!std::filesystem::exists(dir / "a.safetensors")) {
      const float values[2] = {1.0f, 2.0f};
      const io::TensorToWrite t{"x", DType::F32, {2}, std::as_bytes(std::span(values))};
      io::write_safetensors(dir / "a.safetensors", std::span(&t, 1));
    }
    std::optional<io::SafetensorsFolder> folder;
    if (fuzz::accepts([&] { folder.emplace(dir); })) {
      for (const std::string& name : folder->names()) fuzz::require(folder->find(name) != nullptr, "a listed tensor is not found");
    }
  }
  return 0;
}
