#include "io/gguf_writer.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <unistd.h>


#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

#include "core/error.h"
#include "io/quote.h"

namespace llama3::io {

static_assert(std::endian::native == std::endian::little, "GGUF is written little-endian");

namespace {

// llama.cpp keeps tensor names in a 64-byte buffer with its terminating zero (GGML_MAX_NAME).
constexpr size_t kMaxTensorNameBytes = 63;

void append_le(std::string& out, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

void append_string(std::string& out, std::string_view text) {
  append_le(out, text.size(), 8);
  out += text;
}

template <typename T>
void append_value(std::string& out, T value) {
  if constexpr (std::is_same_v<T, float>) {
    append_le(out, std::bit_cast<uint32_t>(value), 4);
  } else if constexpr (std::is_same_v<T, double>) {
    append_le(out, std::bit_cast<uint64_t>(value), 8);
  } else if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, std::string>) {
    append_string(out, value);
  } else {
    append_le(out, static_cast<uint64_t>(value), sizeof(T));
  }
}

// The key-value pair as stored: key, value type id, value.
std::string encode_entry(std::string_view key, GgufType type, std::string_view value) {
  std::string out;
  append_string(out, key);
  append_le(out, static_cast<uint32_t>(type), 4);
  out += value;
  return out;
}

uint64_t round_up(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

// An open file written with plain write(2), so a failure reports errno ("No space left on
// device"), not a stream's bad bit.
class FileSink {
 public:
  explicit FileSink(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    check(fd_ >= 0, "cannot create {}: {}", path_.string(), std::strerror(errno));
  }
  ~FileSink() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  void write(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      check(n > 0, "cannot write {} (at byte {}): {}", path_.string(), written_,
            n < 0 ? std::strerror(errno) : "nothing written");
      bytes = bytes.subspan(static_cast<size_t>(n));
      written_ += static_cast<uint64_t>(n);
    }
  }
  void pad(uint64_t alignment) {
    static constexpr std::byte kZeros[256] = {};
    while (written_ % alignment != 0) {
      const uint64_t missing = round_up(written_, alignment) - written_;
      write(std::span(kZeros, std::min<uint64_t>(sizeof(kZeros), missing)));
    }
  }
  void close() {
    const int rc = ::close(std::exchange(fd_, -1));
    check(rc == 0, "cannot write {}: {}", path_.string(), std::strerror(errno));
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  check(alignment != 0 && (alignment & (alignment - 1)) == 0,
        "GgufWriter: alignment {} is not a power of two", alignment);
  if (alignment != kGgufDefaultAlignment) {
    std::string value;
    append_value(value, alignment);
    metadata_ += encode_entry(kGgufAlignmentKey, GgufType::U32, value);
    keys_.emplace(kGgufAlignmentKey);
    ++metadata_count_;
  }
}

void GgufWriter::add_entry(std::string_view key, GgufType type, std::string_view encoded_value) {
  check(!key.empty(), "GgufWriter: empty metadata key");
  check(key != kGgufAlignmentKey,
        "GgufWriter: {} is set by the writer's alignment, not as metadata", kGgufAlignmentKey);
  check(keys_.emplace(key).second, "GgufWriter: metadata key {} is set twice", quote(key));
  metadata_ += encode_entry(key, type, encoded_value);
  ++metadata_count_;
}

#define LLAMA3_GGUF_SETTER(suffix, Type, gguf_type)                    \
  void GgufWriter::set_##suffix(std::string_view key, Type value) {   \
    std::string encoded;                                              \
    append_value(encoded, value);                                     \
    add_entry(key, gguf_type, encoded);                               \
  }
LLAMA3_GGUF_SETTER(u8, uint8_t, GgufType::U8)
LLAMA3_GGUF_SETTER(i8, int8_t, GgufType::I8)
LLAMA3_GGUF_SETTER(u16, uint16_t, GgufType::U16)
LLAMA3_GGUF_SETTER(i16, int16_t, GgufType::I16)
LLAMA3_GGUF_SETTER(u32, uint32_t, GgufType::U32)
LLAMA3_GGUF_SETTER(i32, int32_t, GgufType::I32)
LLAMA3_GGUF_SETTER(u64, uint64_t, GgufType::U64)
LLAMA3_GGUF_SETTER(i64, int64_t, GgufType::I64)
LLAMA3_GGUF_SETTER(f32, float, GgufType::F32)
LLAMA3_GGUF_SETTER(f64, double, GgufType::F64)
LLAMA3_GGUF_SETTER(bool, bool, GgufType::BOOL)
LLAMA3_GGUF_SETTER(string, std::string_view, GgufType::STRING)
#undef LLAMA3_GGUF_SETTER

template <typename T>
void GgufWriter::add_array(std::string_view key, GgufType element, std::span<const T> values) {
  std::string encoded;
  append_le(encoded, static_cast<uint32_t>(element), 4);
  append_le(encoded, values.size(), 8);
  for (const T& v : values) append_value(encoded, v);
  add_entry(key, GgufType::ARRAY, encoded);
}

#define LLAMA3_GGUF_ARRAY_SETTER(Type, gguf_type)                                  \
  void GgufWriter::set_array(std::string_view key, std::span<const Type> values) { \
    add_array(key, gguf_type, values);                                             \
  }
LLAMA3_GGUF_ARRAY_SETTER(uint8_t, GgufType::U8)
LLAMA3_GGUF_ARRAY_SETTER(int8_t, GgufType::I8)
LLAMA3_GGUF_ARRAY_SETTER(uint16_t, GgufType::U16)
LLAMA3_GGUF_ARRAY_SETTER(int16_t, GgufType::I16)
LLAMA3_GGUF_ARRAY_SETTER(uint32_t, GgufType::U32)
LLAMA3_GGUF_ARRAY_SETTER(int32_t, GgufType::I32)
LLAMA3_GGUF_ARRAY_SETTER(uint64_t, GgufType::U64)
LLAMA3_GGUF_ARRAY_SETTER(int64_t, GgufType::I64)
LLAMA3_GGUF_ARRAY_SETTER(float, GgufType::F32)
LLAMA3_GGUF_ARRAY_SETTER(double, GgufType::F64)
LLAMA3_GGUF_ARRAY_SETTER(bool, GgufType::BOOL)
LLAMA3_GGUF_ARRAY_SETTER(std::string_view, GgufType::STRING)
LLAMA3_GGUF_ARRAY_SETTER(std::string, GgufType::STRING)
#undef LLAMA3_GGUF_ARRAY_SETTER

void GgufWriter::add_tensor(std::string_view name, GgmlType type, std::span<const int64_t> dims,
                            uint64_t byte_size, Fill fill) {
  const std::string what = fmt::format("GgufWriter: tensor {}", quote(name));
  check(!name.empty(), "GgufWriter: empty tensor name");
  check(name.size() <= kMaxTensorNameBytes,
        "{} has a name of {} bytes (llama.cpp reads at most {})", what, name.size(),
        kMaxTensorNameBytes);
  check(!tensor_names_.contains(std::string(name)), "{} is added twice", what);
  const uint64_t expected = gguf_tensor_bytes(type, dims, what);
  check(byte_size == expected, "{} of type {} and dims [{}] takes {} bytes, not {}", what,
        ggml_type_name(type), fmt::join(dims, ", "), expected, byte_size);
  check(static_cast<bool>(fill), "{} has no fill function", what);
  tensor_names_.emplace(name);
  tensors_.push_back(
      {std::string(name), type, {dims.begin(), dims.end()}, byte_size, std::move(fill)});
}

void GgufWriter::write(const std::filesystem::path& path) const {
  std::string header;
  append_le(header, kGgufMagic, 4);
  append_le(header, kGgufVersion, 4);
  append_le(header, tensors_.size(), 8);
  append_le(header, metadata_count_, 8);
  header += metadata_;
  uint64_t offset = 0;
  uint64_t largest = 0;
  for (const PendingTensor& t : tensors_) {
    append_string(header, t.name);
    append_le(header, t.dims.size(), 4);
    for (const int64_t d : t.dims) append_le(header, static_cast<uint64_t>(d), 8);
    append_le(header, static_cast<uint32_t>(t.type), 4);
    append_le(header, offset, 8);
    offset += round_up(t.byte_size, alignment_);
    largest = std::max(largest, t.byte_size);
  }
  header.resize(round_up(header.size(), alignment_), '\0');

  // A name of this writer's own: several processes may write the same file at once (the ranks
  // of a mesh's data-parallel groups each cache the same share); each renames a whole file.
  const std::filesystem::path tmp = fmt::format("{}.tmp.{}.{:08x}", path.string(), ::getpid(), std::random_device{}());
  try {
    FileSink sink(tmp);
    sink.write(std::as_bytes(std::span(header.data(), header.size())));
    std::vector<std::byte> buffer(largest);
    for (const PendingTensor& t : tensors_) {
      const std::span<std::byte> bytes(buffer.data(), t.byte_size);
      // Zeroed, so a fill that skips bytes still writes the same file every time.
      std::fill(bytes.begin(), bytes.end(), std::byte{0});
      t.fill(bytes);
      sink.write(bytes);
      sink.pad(alignment_);
    }
    sink.close();
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    check(!ec, "cannot rename {} to {}: {}", tmp.string(), path.string(), ec.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

}  // namespace llama3::io
