#include "io/gguf_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "io/byte_reader.h"
#include "io/checked_math.h"
#include "io/quote.h"

namespace llama3::io {

namespace {

// The fewest bytes a key-value pair (u64 key length, one key byte, u32 type, a u8 value) and a
// tensor info (u64 name length, one name byte, u32 n_dims, one u64 dim, u32 type, u64 offset)
// can take: a count larger than the remaining bytes allow is rejected before anything is stored.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;

// `what` names the string in errors, e.g. "key 'general.name'"; the reader adds the file.
std::string_view read_string(ByteReader& reader, std::string_view what) {
  const size_t at = reader.position();
  const uint64_t length = reader.u64();
  check(length <= reader.remaining(),
        "{}: {}: string at byte {} claims {} bytes, past the end of the file ({} bytes left)",
        reader.what(), what, at, length, reader.remaining());
  return reader.text(length);
}

GgufType read_type(ByteReader& reader, std::string_view what) {
  const uint32_t id = reader.u32();
  const auto type = gguf_type_from_id(id);
  check(type.has_value(), "{}: {} has unknown value type id {}", reader.what(), what, id);
  return *type;
}

void check_bools(const ByteReader& reader, std::span<const std::byte> bytes,
                 std::string_view what) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    check(bytes[i] <= std::byte{1}, "{}: {}: bool {} is {} (must be 0 or 1)", reader.what(), what,
          i, static_cast<int>(bytes[i]));
  }
}

GgufValue read_value(ByteReader& reader, std::string_view what) {
  const GgufType type = read_type(reader, what);
  if (const size_t size = gguf_scalar_bytes(type)) {
    const auto bytes = reader.bytes(size);
    if (type == GgufType::BOOL) check_bools(reader, bytes, what);
    return GgufValue(type, bytes);
  }
  if (type == GgufType::STRING) {
    const std::string_view text = read_string(reader, what);
    return GgufValue(type, std::as_bytes(std::span(text.data(), text.size())));
  }
  const GgufType element = read_type(reader, what);
  check(element != GgufType::ARRAY, "{}: {} is an array of arrays, which is not supported",
        reader.what(), what);
  const uint64_t count = reader.u64();
  const size_t element_size = gguf_scalar_bytes(element);
  const uint64_t least = element_size ? element_size : 8;  // a string is its u64 length at least
  check(count <= reader.remaining() / least,
        "{}: {}: an array of {} {} elements cannot fit in the remaining {} bytes", reader.what(),
        what, count, gguf_type_name(element), reader.remaining());
  if (element_size) {
    const auto bytes = reader.bytes(count * element_size);
    if (element == GgufType::BOOL) check_bools(reader, bytes, what);
    return GgufValue(type, bytes, element, count);
  }
  const size_t start = reader.position();
  for (uint64_t i = 0; i < count; ++i) read_string(reader, what);
  const size_t end = reader.position();
  reader.seek(start);
  return GgufValue(type, reader.bytes(end - start), element, count);
}

// Conversions behind the typed getters; `where` names the file and key in errors.
std::string key_where(std::string_view file, std::string_view key) {
  return fmt::format("{}: key {}", file, quote(key));
}

template <typename Convert>
auto find_as(const GgufValue* value, const std::string& where, Convert convert)
    -> std::optional<decltype(convert(where, *value))> {
  if (value == nullptr) return std::nullopt;
  return convert(where, *value);
}

[[noreturn]] void wrong_type(std::string_view where, const GgufValue& value,
                             std::string_view wanted) {
  fail("{} is {}, not {}", where, value.type_name(), wanted);
}

std::string scalar_text(const GgufScalar& s) {
  return std::visit([](auto v) { return fmt::format("{}", v); }, s);
}

int64_t fit_int(const GgufScalar& s, std::string_view where) {
  if (const auto* u = std::get_if<uint64_t>(&s)) {
    check(*u <= static_cast<uint64_t>(INT64_MAX), "{}: {} does not fit int64", where, *u);
    return static_cast<int64_t>(*u);
  }
  return std::get<int64_t>(s);
}

std::string_view as_string(std::string_view where, const GgufValue& v) {
  if (v.type() != GgufType::STRING) wrong_type(where, v, "a string");
  return v.string();
}

uint64_t as_uint(std::string_view where, const GgufValue& v) {
  if (!gguf_is_integer(v.type())) wrong_type(where, v, "an integer");
  const GgufScalar s = v.scalar();
  if (const auto* i = std::get_if<int64_t>(&s)) {
    check(*i >= 0, "{} is {} ({}), not an unsigned integer", where, scalar_text(s), v.type_name());
    return static_cast<uint64_t>(*i);
  }
  return std::get<uint64_t>(s);
}

int64_t as_int(std::string_view where, const GgufValue& v) {
  if (!gguf_is_integer(v.type())) wrong_type(where, v, "an integer");
  return fit_int(v.scalar(), where);
}

double as_float(std::string_view where, const GgufValue& v) {
  if (!gguf_is_float(v.type())) wrong_type(where, v, "f32 or f64");
  return std::get<double>(v.scalar());
}

bool as_bool(std::string_view where, const GgufValue& v) {
  if (v.type() != GgufType::BOOL) wrong_type(where, v, "a bool");
  return std::get<bool>(v.scalar());
}

std::vector<std::string_view> as_string_array(std::string_view where, const GgufValue& v) {
  if (v.type() != GgufType::ARRAY || v.element_type() != GgufType::STRING) {
    wrong_type(where, v, "an array of string");
  }
  return v.strings();
}

std::vector<int64_t> as_int_array(std::string_view where, const GgufValue& v) {
  if (v.type() != GgufType::ARRAY || !gguf_is_integer(v.element_type())) {
    wrong_type(where, v, "an array of integers");
  }
  std::vector<int64_t> out;
  out.reserve(v.count());
  for (uint64_t i = 0; i < v.count(); ++i) {
    out.push_back(fit_int(v.element(i), fmt::format("{}[{}]", where, i)));
  }
  return out;
}

std::vector<double> as_float_array(std::string_view where, const GgufValue& v) {
  if (v.type() != GgufType::ARRAY || !gguf_is_float(v.element_type())) {
    wrong_type(where, v, "an array of f32 or f64");
  }
  std::vector<double> out;
  out.reserve(v.count());
  for (uint64_t i = 0; i < v.count(); ++i) out.push_back(std::get<double>(v.element(i)));
  return out;
}

}  // namespace

int64_t GgufTensor::elements() const {
  int64_t n = 1;
  for (const int64_t d : dims) n *= d;
  return n;
}

GgufFile::GgufFile(const std::filesystem::path& path) : file_(path), what_(path.string()) {
  parse();
}

void GgufFile::parse() {
  ByteReader reader(file_.bytes(), what_);
  const uint32_t magic = reader.u32();
  check(magic == kGgufMagic, "{}: not a GGUF file (it starts with {}, not 'GGUF')", what_,
        quote(std::string_view(reinterpret_cast<const char*>(file_.bytes().data()), 4)));
  version_ = reader.u32();
  check(version_ != 1, "{}: GGUF version 1 is not supported (only versions 2 and 3)", what_);
  check((version_ & 0xffff) != 0 || version_ == 0,
        "{}: GGUF version {:#010x} looks byte-swapped: big-endian GGUF files are not supported",
        what_, version_);
  check(version_ == 2 || version_ == 3,
        "{}: unsupported GGUF version {} (only versions 2 and 3 are read)", what_, version_);
  const uint64_t tensor_count = reader.u64();
  const uint64_t kv_count = reader.u64();
  check(kv_count <= reader.remaining() / kMinKvBytes,
        "{}: {} metadata entries cannot fit in the remaining {} bytes", what_, kv_count,
        reader.remaining());
  check(tensor_count <= reader.remaining() / kMinTensorInfoBytes,
        "{}: {} tensors cannot fit in the remaining {} bytes", what_, tensor_count,
        reader.remaining());
  read_metadata(reader, kv_count);
  const std::vector<uint64_t> sizes = read_tensor_infos(reader, tensor_count);
  const auto data_offset = checked_add(reader.position(), alignment_ - 1);
  check(data_offset.has_value(), "{}: data section offset overflows", what_);
  data_offset_ = *data_offset / alignment_ * alignment_;
  place_tensors(sizes);
}

void GgufFile::read_metadata(ByteReader& reader, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    const std::string_view key = read_string(reader, fmt::format("metadata key {}", i));
    check(!key.empty(), "{}: metadata key {} is empty", what_, i);
    const std::string label = fmt::format("key {}", quote(key));
    check(!entry_index_.contains(key), "{}: {} occurs twice", what_, label);
    entries_.push_back({key, read_value(reader, label)});
    entry_index_.emplace(key, entries_.size() - 1);
  }
  if (const GgufValue* v = find_value(kGgufAlignmentKey)) {
    check(v->type() == GgufType::U32, "{}: key '{}' is {}, not u32", what_, kGgufAlignmentKey,
          v->type_name());
    const auto alignment = std::get<uint64_t>(v->scalar());
    check(alignment != 0 && (alignment & (alignment - 1)) == 0,
          "{}: {} is {}, which is not a power of two", what_, kGgufAlignmentKey, alignment);
    alignment_ = static_cast<uint32_t>(alignment);
  }
}

std::vector<uint64_t> GgufFile::read_tensor_infos(ByteReader& reader, uint64_t count) {
  std::vector<uint64_t> sizes;
  for (uint64_t i = 0; i < count; ++i) {
    const std::string_view name = read_string(reader, fmt::format("tensor {} name", i));
    check(!name.empty(), "{}: tensor {} has an empty name", what_, i);
    const std::string where = fmt::format("{}: tensor {}", what_, quote(name));
    check(!tensor_index_.contains(name), "{} occurs twice", where);
    const uint32_t n_dims = reader.u32();
    check(n_dims >= 1 && n_dims <= kGgufMaxDims, "{} has {} dimensions (must be 1 to {})", where,
          n_dims, kGgufMaxDims);
    GgufTensor tensor;
    tensor.name = std::string(name);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = reader.u64();
      check(dim != 0 && dim <= static_cast<uint64_t>(INT64_MAX),
            "{} has dimension {} of size {} (must be positive)", where, d,
            static_cast<int64_t>(dim));
      tensor.dims.push_back(static_cast<int64_t>(dim));
    }
    const uint32_t type_id = reader.u32();
    const auto traits = ggml_type_traits(type_id);
    check(traits.has_value(), "{} has unknown ggml type id {}", where, type_id);
    tensor.type = traits->type;
    tensor.offset = reader.u64();
    sizes.push_back(gguf_tensor_bytes(tensor.type, tensor.dims, where));
    tensors_.push_back(std::move(tensor));
    tensor_index_.emplace(name, tensors_.size() - 1);
  }
  return sizes;
}

void GgufFile::place_tensors(std::span<const uint64_t> sizes) {
  const uint64_t file_size = file_.size();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensor& t = tensors_[i];
    const std::string where = fmt::format("{}: tensor {}", what_, quote(t.name));
    check(t.offset % alignment_ == 0, "{} has offset {}, not a multiple of the alignment {}",
          where, t.offset, alignment_);
    const uint64_t size = sizes[i];
    const auto begin = checked_add(data_offset_, t.offset);
    const auto end = begin ? checked_add(*begin, size) : std::nullopt;
    check(end && *end <= file_size,
          "{} ({} bytes at data offset {}) lies past the end of the file ({} bytes, data section "
          "at {})", where, size, t.offset, file_size, data_offset_);
    t.data = file_.bytes().subspan(static_cast<size_t>(*begin), static_cast<size_t>(size));
  }
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensor& prev = tensors_[order[i - 1]];
    const GgufTensor& next = tensors_[order[i]];
    check(next.offset >= prev.offset + prev.data.size(),
          "{}: tensors {} (bytes {}..{}) and {} (from byte {}) overlap", what_, quote(prev.name),
          prev.offset, prev.offset + prev.data.size(), quote(next.name), next.offset);
  }
}

std::vector<std::string_view> GgufFile::keys() const {
  std::vector<std::string_view> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.push_back(e.key);
  return out;
}

const GgufValue* GgufFile::find_value(std::string_view key) const {
  const auto it = entry_index_.find(key);
  return it == entry_index_.end() ? nullptr : &entries_[it->second].value;
}

const GgufValue& GgufFile::value(std::string_view key) const {
  const GgufValue* v = find_value(key);
  check(v != nullptr, "{} is missing", key_where(what_, key));
  return *v;
}

const GgufTensor* GgufFile::find(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string_view GgufFile::get_string(std::string_view key) const {
  return as_string(key_where(what_, key), value(key));
}
std::optional<std::string_view> GgufFile::find_string(std::string_view key) const {
  return find_as(find_value(key), key_where(what_, key), as_string);
}
uint64_t GgufFile::get_uint(std::string_view key) const {
  return as_uint(key_where(what_, key), value(key));
}
std::optional<uint64_t> GgufFile::find_uint(std::string_view key) const {
  return find_as(find_value(key), key_where(what_, key), as_uint);
}
int64_t GgufFile::get_int(std::string_view key) const {
  return as_int(key_where(what_, key), value(key));
}
std::optional<int64_t> GgufFile::find_int(std::string_view key) const {
  return find_as(find_value(key), key_where(what_, key), as_int);
}
double GgufFile::get_float(std::string_view key) const {
  return as_float(key_where(what_, key), value(key));
}
std::optional<double> GgufFile::find_float(std::string_view key) const {
  return find_as(find_value(key), key_where(what_, key), as_float);
}
bool GgufFile::get_bool(std::string_view key) const {
  return as_bool(key_where(what_, key), value(key));
}
std::optional<bool> GgufFile::find_bool(std::string_view key) const {
  return find_as(find_value(key), key_where(what_, key), as_bool);
}
std::vector<std::string_view> GgufFile::get_string_array(std::string_view key) const {
  return as_string_array(key_where(what_, key), value(key));
}
std::optional<std::vector<std::string_view>> GgufFile::find_string_array(
    std::string_view key) const {
  return find_as(find_value(key), key_where(what_, key), as_string_array);
}
std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  return as_int_array(key_where(what_, key), value(key));
}
std::optional<std::vector<int64_t>> GgufFile::find_int_array(std::string_view key) const {
  return find_as(find_value(key), key_where(what_, key), as_int_array);
}
std::vector<double> GgufFile::get_float_array(std::string_view key) const {
  return as_float_array(key_where(what_, key), value(key));
}
std::optional<std::vector<double>> GgufFile::find_float_array(std::string_view key) const {
  return find_as(find_value(key), key_where(what_, key), as_float_array);
}

}  // namespace llama3::io
