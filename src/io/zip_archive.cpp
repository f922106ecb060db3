#include "io/zip_archive.h"

#include <optional>

#include "core/error.h"
#include "io/byte_reader.h"
#include "io/checked_math.h"
#include "io/quote.h"

namespace llama3::io {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr size_t kEndSize = 22;
constexpr size_t kLocatorSize = 20;
constexpr size_t kCentralHeaderSize = 46;
constexpr uint32_t kMask32 = 0xffffffffu;

uint32_t u32_at(std::span<const std::byte> bytes, size_t pos) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v |= static_cast<uint32_t>(bytes[pos + i]) << (8 * i);
  return v;
}

// The end-of-central-directory record sits in the last 22 + 65535 bytes (its comment is at most
// 65535 bytes); scan backwards for its signature with a comment that fits in the file.
std::optional<size_t> find_end_record(std::span<const std::byte> bytes) {
  if (bytes.size() < kEndSize) return std::nullopt;
  const size_t lowest = bytes.size() >= kEndSize + 0xffff ? bytes.size() - kEndSize - 0xffff : 0;
  for (size_t pos = bytes.size() - kEndSize + 1; pos-- > lowest;) {
    if (u32_at(bytes, pos) != kEndSig) continue;
    const size_t comment = static_cast<size_t>(bytes[pos + 20]) |
                           static_cast<size_t>(bytes[pos + 21]) << 8;
    if (pos + kEndSize + comment <= bytes.size()) return pos;
  }
  return std::nullopt;
}

}  // namespace

ZipArchive::ZipArchive(std::span<const std::byte> bytes, std::string file)
    : bytes_(bytes), file_(std::move(file)) {
  const auto end_pos = find_end_record(bytes_);
  check(end_pos.has_value(), "{}: not a zip archive (no end of central directory record)", file_);
  ByteReader end(bytes_, file_ + ": zip end record");
  end.seek(*end_pos + 4);
  const uint16_t disk = end.u16();
  const uint16_t cd_disk = end.u16();
  end.u16();  // entries on this disk
  uint64_t count = end.u16();
  uint64_t cd_size = end.u32();
  uint64_t cd_offset = end.u32();

  const bool zip64 = *end_pos >= kLocatorSize && u32_at(bytes_, *end_pos - kLocatorSize) ==
                                                     kZip64LocatorSig;
  if (zip64) {
    ByteReader locator(bytes_, file_ + ": zip64 locator");
    locator.seek(*end_pos - kLocatorSize + 4);
    const uint32_t z_disk = locator.u32();
    const uint64_t record = locator.u64();
    const uint32_t disks = locator.u32();
    check(z_disk == 0 && disks <= 1, "{}: multi-disk zip archives are not supported", file_);
    ByteReader z(bytes_, file_ + ": zip64 end record");
    z.seek(record);
    check(z.u32() == kZip64EndSig, "{}: zip64 end record at offset {} has a bad signature", file_,
          record);
    z.u64();  // size of the rest of the record
    z.u16();  // version made by
    z.u16();  // version needed
    const uint32_t d1 = z.u32();
    const uint32_t d2 = z.u32();
    check(d1 == 0 && d2 == 0, "{}: multi-disk zip archives are not supported", file_);
    z.u64();  // entries on this disk
    count = z.u64();
    cd_size = z.u64();
    cd_offset = z.u64();
  } else {
    check(disk == 0 && cd_disk == 0, "{}: multi-disk zip archives are not supported", file_);
  }
  read_central_directory(cd_offset, cd_size, count);
}

void ZipArchive::read_central_directory(uint64_t offset, uint64_t size, uint64_t count) {
  const auto cd_end = checked_add(offset, size);
  check(cd_end && *cd_end <= bytes_.size(),
        "{}: zip central directory [{}, +{}) is past the end of the file ({} bytes)", file_, offset,
        size, bytes_.size());
  check(count <= size / kCentralHeaderSize,
        "{}: zip central directory claims {} entries but its {} bytes cannot hold them", file_,
        count, size);
  ByteReader cd(bytes_.subspan(offset, size), file_ + ": zip central directory");
  entries_.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    check(cd.u32() == kCentralHeaderSig, "{}: zip central directory entry {} has a bad signature",
          file_, i);
    cd.u16();  // version made by
    cd.u16();  // version needed
    const uint16_t flags = cd.u16();
    const uint16_t method = cd.u16();
    cd.u32();  // time and date
    cd.u32();  // crc
    uint64_t compressed = cd.u32();
    uint64_t uncompressed = cd.u32();
    const uint16_t name_len = cd.u16();
    const uint16_t extra_len = cd.u16();
    const uint16_t comment_len = cd.u16();
    uint32_t disk = cd.u16();
    cd.u16();  // internal attributes
    cd.u32();  // external attributes
    uint64_t local = cd.u32();
    ZipEntry entry;
    entry.name = std::string(cd.text(name_len));
    const std::string what = file_ + ": zip entry " + quote(entry.name);

    // ZIP64 extra field: 64-bit values for exactly those fields that hold 0xffffffff above.
    ByteReader extra(cd.bytes(extra_len), what + " extra field");
    while (extra.remaining() >= 4) {
      const uint16_t id = extra.u16();
      const uint16_t len = extra.u16();
      ByteReader field(extra.bytes(len), what + " zip64 field");
      if (id != kZip64ExtraId) continue;
      if (uncompressed == kMask32) uncompressed = field.u64();
      if (compressed == kMask32) compressed = field.u64();
      if (local == kMask32) local = field.u64();
      if (disk == 0xffff) disk = field.u32();
    }
    cd.bytes(comment_len);

    check((flags & 1) == 0, "{} is encrypted", what);
    check(method == 0,
          "{} is compressed (method {}); PyTorch writes entries stored, re-save the checkpoint "
          "with torch.save",
          what, method);
    check(compressed == uncompressed, "{}: stored entry with compressed size {} != size {}", what,
          compressed, uncompressed);
    check(disk == 0, "{}: multi-disk zip archives are not supported", file_);

    ByteReader header(bytes_, what + " local header");
    header.seek(local);
    check(header.u32() == kLocalHeaderSig, "{}: bad local header signature at offset {}", what,
          local);
    header.bytes(22);  // version, flags, method, time, date, crc, sizes: the central copy rules
    const uint16_t local_name_len = header.u16();
    const uint16_t local_extra_len = header.u16();
    check(header.text(local_name_len) == entry.name, "{}: local header names another entry", what);
    header.bytes(local_extra_len);
    entry.offset = header.position();
    entry.size = uncompressed;
    const auto data_end = checked_add(entry.offset, entry.size);
    check(data_end && *data_end <= bytes_.size(),
          "{}: data [{}, +{}) is past the end of the file ({} bytes)", what, entry.offset,
          entry.size, bytes_.size());

    check(index_.emplace(entry.name, entries_.size()).second, "{} appears twice", what);
    entries_.push_back(std::move(entry));
  }
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

}  // namespace llama3::io
