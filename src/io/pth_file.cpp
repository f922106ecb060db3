#include "io/pth_file.h"

#include "core/error.h"
#include "io/checked_math.h"
#include "io/quote.h"
#include "io/restricted_unpickler.h"
#include "io/zip_archive.h"

namespace llama3::io {
namespace {

// torch.save names every entry "<prefix>/..." where the prefix comes from the file name it was
// first saved under; the one "<prefix>/data.pkl" tells us the prefix.
std::string find_prefix(const ZipArchive& zip, const std::string& file) {
  std::string prefix;
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash == std::string::npos || slash == 0 || e.name.substr(slash) != "/data.pkl") continue;
    check(prefix.empty(), "{}: archive holds two pickles, {} and {}", file,
          quote(prefix + "/data.pkl"), quote(e.name));
    prefix = e.name.substr(0, slash);
  }
  check(!prefix.empty(), "{}: zip archive has no <name>/data.pkl entry; not a torch.save file",
        file);
  return prefix;
}

}  // namespace

PthFile::PthFile(const std::filesystem::path& path) : file_(path) {
  const std::string file = path.string();
  const auto bytes = file_.bytes();
  // torch.save before 1.6 wrote a bare pickle stream (starts with the PROTO opcode 0x80).
  check(!(bytes.size() >= 2 && bytes[0] == std::byte{0x80} && bytes[1] <= std::byte{5}),
        "{}: legacy (pre-1.6) torch.save format is not supported; re-save it with a newer torch",
        file);
  const ZipArchive zip(bytes, file);
  const std::string prefix = find_prefix(zip, file);

  if (const ZipEntry* order = zip.find(prefix + "/byteorder")) {
    const auto data = zip.data(*order);
    const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    check(text == "little", "{}: byteorder is {}; only little-endian checkpoints are supported",
          file, quote(text));
  }

  const ZipEntry& pickle = *zip.find(prefix + "/data.pkl");
  const auto pickled = unpickle_state_dict(zip.data(pickle), file + ": " + pickle.name);

  tensors_.reserve(pickled.size());
  for (const PickledTensor& t : pickled) {
    const std::string record = prefix + "/data/" + t.storage_key;
    const ZipEntry* entry = zip.find(record);
    check(entry != nullptr, "{}: tensor {} needs storage record {}, which the archive lacks", file,
          quote(t.name), quote(record));
    const size_t elem = dtype_size(t.dtype);
    const auto storage_bytes = checked_mul(static_cast<uint64_t>(t.storage_numel), elem);
    check(storage_bytes && *storage_bytes == entry->size,
          "{}: storage {} of {} {} elements needs {} bytes but its record holds {}", file,
          quote(record), t.storage_numel, dtype_name(t.dtype),
          storage_bytes ? fmt::format("{}", *storage_bytes) : std::string("too many"),
          entry->size);
    // The unpickler checked offset + numel <= storage_numel, so these cannot overflow.
    TensorInfo info;
    info.name = t.name;
    info.dtype = t.dtype;
    info.shape = t.shape;
    const uint64_t begin = static_cast<uint64_t>(t.offset) * elem;
    const uint64_t size = static_cast<uint64_t>(info.numel()) * elem;
    info.data = zip.data(*entry).subspan(begin, size);
    index_.emplace(info.name, tensors_.size());
    tensors_.push_back(std::move(info));
  }
}

const TensorInfo* PthFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace llama3::io
