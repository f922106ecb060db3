#pragma once
// Bounds-checked little-endian reads over untrusted bytes. Every file reader in io/ goes through
// this, so a truncated or lying file ends in a llama3::Error, never in a read past the end.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/error.h"

namespace llama3::io {

class ByteReader {
 public:
  // `what` names the data in error messages, e.g. "model.pth: data.pkl".
  ByteReader(std::span<const std::byte> bytes, std::string what)
      : bytes_(bytes), what_(std::move(what)) {}

  size_t position() const { return pos_; }
  size_t size() const { return bytes_.size(); }
  size_t remaining() const { return bytes_.size() - pos_; }
  bool at_end() const { return pos_ == bytes_.size(); }
  const std::string& what() const { return what_; }

  void seek(uint64_t pos) {
    check(pos <= bytes_.size(), "{}: offset {} is past the end ({} bytes)", what_, pos, bytes_.size());
    pos_ = static_cast<size_t>(pos);
  }

  std::span<const std::byte> bytes(uint64_t n) {
    need(n);
    const auto out = bytes_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return out;
  }
  std::string_view text(uint64_t n) {
    const auto b = bytes(n);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }

  uint8_t u8() { return static_cast<uint8_t>(le(1)); }
  uint16_t u16() { return static_cast<uint16_t>(le(2)); }
  uint32_t u32() { return static_cast<uint32_t>(le(4)); }
  uint64_t u64() { return le(8); }

  // Reads up to and including '\n' (at most `max_len` bytes before it); returns the text before it.
  std::string_view line(size_t max_len) {
    const size_t start = pos_;
    for (size_t i = pos_; i < bytes_.size() && i - start <= max_len; ++i) {
      if (bytes_[i] == std::byte{'\n'}) {
        pos_ = i + 1;
        return {reinterpret_cast<const char*>(bytes_.data() + start), i - start};
      }
    }
    fail("{}: unterminated or overlong text line at byte {}", what_, start);
  }

 private:
  void need(uint64_t n) const {
    check(n <= remaining(), "{}: truncated: {} bytes needed at byte {}, {} left", what_, n, pos_,
          remaining());
  }
  uint64_t le(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(bytes_[pos_ + i]) << (8 * i);
    pos_ += n;
    return v;
  }

  std::span<const std::byte> bytes_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace llama3::io
