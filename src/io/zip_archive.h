#pragma once
// A minimal reader of the zip central directory, enough for PyTorch checkpoints: torch.save writes
// every entry STORED (uncompressed) and 64-byte aligned, so an entry's bytes can be used straight
// from the memory map. We do not use libzip (or minizip) because they hand out entries only by
// decompressing/copying them into a buffer, never as an offset into the file, which would double
// the memory of a 70B checkpoint. ZIP64 is supported (real 70B shards are over 4 GB);
// compressed, encrypted and multi-disk archives are rejected. CRCs are not checked: that would
// read every byte of the weights at open time.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llama3::io {

struct ZipEntry {
  std::string name;
  uint64_t offset = 0;  // of the entry's first data byte, from the start of the archive
  uint64_t size = 0;
};

class ZipArchive {
 public:
  // `bytes` must outlive the archive; `file` names it in error messages.
  ZipArchive(std::span<const std::byte> bytes, std::string file);

  const std::vector<ZipEntry>& entries() const { return entries_; }  // central directory order
  const ZipEntry* find(std::string_view name) const;                 // nullptr if absent
  std::span<const std::byte> data(const ZipEntry& entry) const {
    return bytes_.subspan(entry.offset, entry.size);
  }

 private:
  void read_central_directory(uint64_t offset, uint64_t size, uint64_t count);

  std::span<const std::byte> bytes_;
  std::string file_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace llama3::io
