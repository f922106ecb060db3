#pragma once
// A read-only memory map of a whole file. Weights are used straight from the map where their
// layout allows, so loading a checkpoint does not copy it.
#include <cstddef>
#include <filesystem>
#include <span>

namespace llama3 {

class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Drops the whole pages inside `bytes` from this process's page tables (MADV_DONTNEED) when
  // they lie in a live MappedFile; anything else (owned memory, a span outside every map) is left
  // alone. The pages stay in the kernel's page cache and a later read maps them again from the
  // file, so this only lowers resident memory: the loaders call it on source tensors once they
  // have converted them, so a process holds its converted weights, not the checkpoint too.
  static void release_pages(std::span<const std::byte> bytes);

 private:
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace llama3
