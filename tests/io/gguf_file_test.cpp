#include "io/gguf_file.h"

#include <gtest/gtest.h>

#include <bit>

#include "gguf_test_helpers.h"

namespace llama3::io {
namespace {

using testing::GgufBytes;
using testing::gguf_kv;
using testing::gguf_str;
using testing::gguf_tensor_info;
using testing::le16;
using testing::le32;
using testing::le64;
using testing::TempDir;
using testing::write_file;

// Value type ids and ggml type ids as the file stores them.
enum : uint32_t { kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64 };
enum : uint32_t { kTF32 = 0, kTQ4_0 = 2, kTQ8_0 = 8, kTIQ2_XS = 17 };

std::string pattern(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>((i * 37 + 11) & 0xff);
  return s;
}

// A small valid file: a few kinds of metadata, an F32 [4, 2] and a Q8_0 [32] tensor.
GgufBytes sample() {
  GgufBytes g;
  g.kvs = {gguf_kv("general.architecture", kString, gguf_str("llama")),
           gguf_kv("count", kU32, le32(7)),
           gguf_kv("tokens", kArray, le32(kString) + le64(3) + gguf_str("a") + gguf_str("") + gguf_str("ccc")),
           gguf_kv("flag", kBool, std::string(1, '\1'))};
  g.tensors = {gguf_tensor_info("w", {4, 2}, kTF32, 0), gguf_tensor_info("q", {32}, kTQ8_0, 32)};
  g.data = pattern(32 + 34);
  return g;
}

class GgufFileTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& bytes) {
    write_file(path_, bytes);
    return path_;
  }
  GgufFile open(const std::string& bytes) { return GgufFile(write(bytes)); }
  GgufFile open(const GgufBytes& g) { return open(g.build()); }

  TempDir dir_{"io-gguf"};
  std::filesystem::path path_ = dir_.path() / "model.gguf";
};

TEST_F(GgufFileTest, ReadsHeaderMetadataAndTensorsAsViewsIntoTheMap) {
  const GgufBytes g = sample();
  const std::string bytes = g.build();
  GgufFile file = open(bytes);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.path(), path_);
  EXPECT_EQ(file.bytes().size(), bytes.size());
  EXPECT_EQ(file.data_offset(), bytes.size() - g.data.size());
  EXPECT_EQ(file.data_offset() % 32, 0u);
  EXPECT_EQ(file.keys(), (std::vector<std::string_view>{"general.architecture", "count", "tokens", "flag"}));
  EXPECT_EQ(file.get_string("general.architecture"), "llama");
  EXPECT_EQ(file.get_uint("count"), 7u);
  EXPECT_EQ(file.get_string_array("tokens"), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_TRUE(file.get_bool("flag"));
  EXPECT_EQ(file.type_of("tokens"), GgufType::ARRAY);
  EXPECT_EQ(file.value("tokens").element_type(), GgufType::STRING);
  EXPECT_EQ(file.value("tokens").count(), 3u);
  // Strings are views into the map, not copies.
  const std::string_view arch = file.get_string("general.architecture");
  EXPECT_GE(reinterpret_cast<const std::byte*>(arch.data()), file.bytes().data());
  EXPECT_LT(reinterpret_cast<const std::byte*>(arch.data()), file.bytes().data() + file.bytes().size());

  ASSERT_EQ(file.tensors().size(), 2u);
  const GgufTensor* w = file.find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w, &file.tensors()[0]);
  EXPECT_EQ(w->type, GgmlType::F32);
  EXPECT_EQ(w->dims, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(w->elements(), 8);
  EXPECT_EQ(w->offset, 0u);
  EXPECT_EQ(w->data.data(), file.bytes().data() + file.data_offset());
  EXPECT_EQ(testing::as_string(w->data), g.data.substr(0, 32));
  const GgufTensor* q = file.find("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::Q8_0);
  EXPECT_EQ(q->offset, 32u);
  EXPECT_EQ(testing::as_string(q->data), g.data.substr(32, 34));
  EXPECT_EQ(file.find("missing"), nullptr);

  // Views stay valid when the reader is moved.
  const GgufFile moved = std::move(file);
  EXPECT_EQ(moved.find("q")->data.data(), q->data.data());
  EXPECT_EQ(moved.get_string("general.architecture"), "llama");
}

TEST_F(GgufFileTest, ReadsVersion2AndAFileWithoutTensors) {
  GgufBytes g = sample();
  g.version = 2;
  EXPECT_EQ(open(g).version(), 2u);
  GgufBytes empty;
  const GgufFile file = open(empty.header());  // no padding, no data: nothing needs it
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_TRUE(file.keys().empty());
}

TEST_F(GgufFileTest, DecodesEveryScalarType) {
  GgufBytes g;
  g.kvs = {gguf_kv("u8", kU8, std::string(1, '\xff')), gguf_kv("i8", kI8, std::string(1, '\x80')),
           gguf_kv("u16", kU16, le16(65535)), gguf_kv("i16", kI16, le16(0x8000)),
           gguf_kv("u32", kU32, le32(0xffffffff)), gguf_kv("i32", kI32, le32(0xfffffffe)),
           gguf_kv("f32", kF32, le32(std::bit_cast<uint32_t>(1.5f))),
           gguf_kv("b", kBool, std::string(1, '\0')),
           gguf_kv("u64", kU64, le64(UINT64_MAX)), gguf_kv("i64", kI64, le64(static_cast<uint64_t>(INT64_MIN))),
           gguf_kv("f64", kF64, le64(std::bit_cast<uint64_t>(-0.1))), gguf_kv("s", kString, gguf_str("h\xc3\xa9"))};
  const GgufFile file = open(g);
  EXPECT_EQ(file.get_uint("u8"), 255u);
  EXPECT_EQ(file.get_int("i8"), -128);
  EXPECT_EQ(file.get_uint("u16"), 65535u);
  EXPECT_EQ(file.get_int("i16"), -32768);
  EXPECT_EQ(file.get_uint("u32"), 0xffffffffu);
  EXPECT_EQ(file.get_int("u32"), 0xffffffffll);
  EXPECT_EQ(file.get_int("i32"), -2);
  EXPECT_EQ(file.get_float("f32"), 1.5);
  EXPECT_FALSE(file.get_bool("b"));
  EXPECT_EQ(file.get_uint("u64"), UINT64_MAX);
  EXPECT_EQ(file.get_int("i64"), INT64_MIN);
  EXPECT_EQ(file.get_float("f64"), -0.1);
  EXPECT_EQ(file.get_string("s"), "h\xc3\xa9");
  const std::vector<std::pair<const char*, GgufType>> types = {
      {"u8", GgufType::U8}, {"i8", GgufType::I8}, {"u16", GgufType::U16}, {"i16", GgufType::I16},
      {"u32", GgufType::U32}, {"i32", GgufType::I32}, {"f32", GgufType::F32}, {"b", GgufType::BOOL},
      {"u64", GgufType::U64}, {"i64", GgufType::I64}, {"f64", GgufType::F64}, {"s", GgufType::STRING}};
  for (const auto& [key, type] : types) EXPECT_EQ(file.type_of(key), type) << key;
}

TEST_F(GgufFileTest, DecodesArraysOfEveryElementType) {
  GgufBytes g;
  auto array = [](uint32_t type, uint64_t n, const std::string& elements) {
    return le32(type) + le64(n) + elements;
  };
  g.kvs = {gguf_kv("u8s", kArray, array(kU8, 2, "\x01\xff")),
           gguf_kv("i16s", kArray, array(kI16, 2, le16(1) + le16(0xffff))),
           gguf_kv("u64s", kArray, array(kU64, 1, le64(1ull << 40))),
           gguf_kv("i32s", kArray, array(kI32, 2, le32(0x80000000) + le32(5))),
           gguf_kv("f32s", kArray, array(kF32, 2, le32(std::bit_cast<uint32_t>(0.25f)) + le32(std::bit_cast<uint32_t>(-2.0f)))),
           gguf_kv("f64s", kArray, array(kF64, 1, le64(std::bit_cast<uint64_t>(1e300)))),
           gguf_kv("bools", kArray, array(kBool, 3, std::string("\x01\x00\x01", 3))),
           gguf_kv("empty", kArray, array(kI32, 0, "")),
           gguf_kv("no_strings", kArray, array(kString, 0, ""))};
  const GgufFile file = open(g);
  EXPECT_EQ(file.get_int_array("u8s"), (std::vector<int64_t>{1, 255}));
  EXPECT_EQ(file.get_int_array("i16s"), (std::vector<int64_t>{1, -1}));
  EXPECT_EQ(file.get_int_array("u64s"), (std::vector<int64_t>{1ll << 40}));
  EXPECT_EQ(file.get_int_array("i32s"), (std::vector<int64_t>{INT32_MIN, 5}));
  EXPECT_EQ(file.get_float_array("f32s"), (std::vector<double>{0.25, -2.0}));
  EXPECT_EQ(file.get_float_array("f64s"), (std::vector<double>{1e300}));
  const GgufValue& bools = file.value("bools");
  EXPECT_EQ(bools.type_name(), "array of bool");
  EXPECT_EQ(std::get<bool>(bools.element(0)), true);
  EXPECT_EQ(std::get<bool>(bools.element(1)), false);
  EXPECT_TRUE(file.get_int_array("empty").empty());
  EXPECT_TRUE(file.get_string_array("no_strings").empty());
}

TEST_F(GgufFileTest, TypedGettersNameTheKeyAndTheActualType) {
  GgufBytes g;
  g.kvs = {gguf_kv("s", kString, gguf_str("x")), gguf_kv("neg", kI32, le32(0xffffffff)),
           gguf_kv("big", kU64, le64(UINT64_MAX)), gguf_kv("f", kF32, le32(0)),
           gguf_kv("ints", kArray, le32(kU64) + le64(2) + le64(1) + le64(UINT64_MAX)),
           gguf_kv("floats", kArray, le32(kF32) + le64(0))};
  const GgufFile file = open(g);
  EXPECT_IO_ERROR(file.get_uint("s"), "model.gguf", "key 's' is string, not an integer");
  EXPECT_IO_ERROR(file.get_string("neg"), "key 'neg' is i32, not a string");
  EXPECT_IO_ERROR(file.get_uint("neg"), "key 'neg' is -1 (i32), not an unsigned integer");
  EXPECT_IO_ERROR(file.get_int("big"), "key 'big'", "18446744073709551615 does not fit int64");
  EXPECT_IO_ERROR(file.get_float("neg"), "key 'neg' is i32, not f32 or f64");
  EXPECT_IO_ERROR(file.get_bool("f"), "key 'f' is f32, not a bool");
  EXPECT_IO_ERROR(file.get_string_array("floats"), "key 'floats' is array of f32, not an array of string");
  EXPECT_IO_ERROR(file.get_int_array("floats"), "is array of f32, not an array of integers");
  EXPECT_IO_ERROR(file.get_float_array("ints"), "is array of u64, not an array of f32 or f64");
  EXPECT_IO_ERROR(file.get_int_array("ints"), "key 'ints'[1]", "does not fit int64");
  EXPECT_IO_ERROR(file.get_string("absent"), "model.gguf", "key 'absent' is missing");
  EXPECT_IO_ERROR(file.type_of("absent"), "key 'absent' is missing");
  EXPECT_FALSE(file.has("absent"));
  EXPECT_TRUE(file.has("s"));
  EXPECT_EQ(file.find_string("absent"), std::nullopt);
  EXPECT_EQ(file.find_uint("absent"), std::nullopt);
  EXPECT_EQ(file.find_int("absent"), std::nullopt);
  EXPECT_EQ(file.find_float("absent"), std::nullopt);
  EXPECT_EQ(file.find_bool("absent"), std::nullopt);
  EXPECT_EQ(file.find_string_array("absent"), std::nullopt);
  EXPECT_EQ(file.find_int_array("absent"), std::nullopt);
  EXPECT_EQ(file.find_float_array("absent"), std::nullopt);
  EXPECT_EQ(file.find_string("s"), "x");
  EXPECT_EQ(file.find_int("neg"), -1);
  EXPECT_EQ(file.find_float("f"), 0.0);
  EXPECT_EQ(file.find_float_array("floats"), std::vector<double>{});
  EXPECT_IO_ERROR(file.find_string("neg"), "key 'neg' is i32, not a string");  // present, wrong type
}

TEST_F(GgufFileTest, RejectsBadMagicAndVersions) {
  GgufBytes g = sample();
  g.magic = "GGML";
  EXPECT_IO_ERROR(open(g), "model.gguf", "not a GGUF file", "'GGML'");
  EXPECT_IO_ERROR(open(std::string("")), "model.gguf", "truncated");
  for (const uint32_t version : {0u, 4u, 1000u}) {
    g = sample();
    g.version = version;
    EXPECT_IO_ERROR(open(g), "model.gguf", fmt::format("unsupported GGUF version {}", version));
  }
  g = sample();
  g.version = 1;
  EXPECT_IO_ERROR(open(g), "model.gguf", "GGUF version 1 is not supported");
  g.version = 0x03000000;  // a big-endian v3 file read little-endian
  EXPECT_IO_ERROR(open(g), "model.gguf", "byte-swapped", "big-endian");
}

TEST_F(GgufFileTest, RejectsCountsThatCannotFitInTheFile) {
  const std::string valid = sample().build();
  std::string bytes = valid;
  bytes.replace(8, 8, le64(1ull << 60));  // tensor count
  EXPECT_IO_ERROR(open(bytes), "model.gguf", "1152921504606846976 tensors cannot fit");
  bytes = valid;
  bytes.replace(16, 8, le64(1ull << 60));  // kv count
  EXPECT_IO_ERROR(open(bytes), "model.gguf", "1152921504606846976 metadata entries cannot fit");
  bytes = valid;
  bytes.replace(16, 8, le64(UINT64_MAX));
  EXPECT_IO_ERROR(open(bytes), "metadata entries cannot fit");
  bytes = valid;
  bytes.replace(16, 8, le64(5));  // one more pair than there is: the tensor infos read as a pair
  EXPECT_IO_ERROR(open(bytes), "model.gguf");
}

TEST_F(GgufFileTest, RejectsLengthsPastTheEnd) {
  GgufBytes g = sample();
  g.kvs[0] = le64(1ull << 60) + "general.architecture";
  EXPECT_IO_ERROR(open(g), "model.gguf", "metadata key 0", "claims 1152921504606846976 bytes");
  g = sample();
  g.kvs[0] = gguf_str("general.architecture") + le32(kString) + le64(1ull << 60) + "llama";
  EXPECT_IO_ERROR(open(g), "key 'general.architecture'", "claims 1152921504606846976 bytes");
  g = sample();
  g.kvs[2] = gguf_str("tokens") + le32(kArray) + le32(kString) + le64(3) + gguf_str("a") +
             le64(UINT64_MAX) + gguf_str("ccc");
  EXPECT_IO_ERROR(open(g), "key 'tokens'", "claims 18446744073709551615 bytes");
  g = sample();
  g.tensors[1] = le64(1ull << 60) + "q";
  EXPECT_IO_ERROR(open(g), "tensor 1 name", "past the end");
}

TEST_F(GgufFileTest, RejectsArrayCountsThatCannotFit) {
  for (const uint32_t element : {kU8, kI64, kString, kBool}) {
    GgufBytes g = sample();
    g.kvs.push_back(gguf_kv("big", kArray, le32(element) + le64(1ull << 60) + "abc"));
    EXPECT_IO_ERROR(open(g), "model.gguf", "key 'big'", "array of 1152921504606846976",
                    "cannot fit");
  }
  GgufBytes g = sample();
  g.kvs.push_back(gguf_kv("big", kArray, le32(kU32) + le64(UINT64_MAX / 2)));
  EXPECT_IO_ERROR(open(g), "key 'big'", "cannot fit");
}

TEST_F(GgufFileTest, RejectsUnknownValueTypesNestedArraysAndBadBools) {
  GgufBytes g = sample();
  g.kvs.push_back(gguf_kv("odd", 13, le32(0)));
  EXPECT_IO_ERROR(open(g), "model.gguf", "key 'odd' has unknown value type id 13");
  g = sample();
  g.kvs.push_back(gguf_kv("odd", kArray, le32(0xffffffff) + le64(0)));
  EXPECT_IO_ERROR(open(g), "key 'odd' has unknown value type id 4294967295");
  g = sample();
  g.kvs.push_back(gguf_kv("nested", kArray, le32(kArray) + le64(1) + le32(kU8) + le64(1) + "x"));
  EXPECT_IO_ERROR(open(g), "key 'nested' is an array of arrays, which is not supported");
  g = sample();
  g.kvs.push_back(gguf_kv("b", kBool, std::string(1, '\2')));
  EXPECT_IO_ERROR(open(g), "key 'b'", "bool 0 is 2 (must be 0 or 1)");
  g = sample();
  g.kvs.push_back(gguf_kv("bs", kArray, le32(kBool) + le64(2) + std::string("\x01\xff", 2)));
  EXPECT_IO_ERROR(open(g), "key 'bs'", "bool 1 is 255");
}

TEST_F(GgufFileTest, RejectsDuplicateAndEmptyNames) {
  GgufBytes g = sample();
  g.kvs.push_back(gguf_kv("count", kU32, le32(8)));
  EXPECT_IO_ERROR(open(g), "model.gguf", "key 'count' occurs twice");
  g = sample();
  g.kvs.push_back(gguf_kv("", kU32, le32(8)));
  EXPECT_IO_ERROR(open(g), "metadata key 4 is empty");
  g = sample();
  g.tensors.push_back(gguf_tensor_info("w", {4}, kTF32, 128));
  EXPECT_IO_ERROR(open(g), "model.gguf", "tensor 'w' occurs twice");
  g = sample();
  g.tensors.push_back(gguf_tensor_info("", {4}, kTF32, 128));
  EXPECT_IO_ERROR(open(g), "tensor 2 has an empty name");
  g = sample();
  g.kvs.push_back(gguf_kv("ctl\n\x01", 13, ""));  // names from the file stay on one line
  EXPECT_IO_ERROR(open(g), "key 'ctl\\x0a\\x01' has unknown value type id 13");
}

TEST_F(GgufFileTest, RejectsBadShapes) {
  struct Case {
    std::vector<uint64_t> dims;
    uint32_t type;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{}, kTF32, "tensor 'x' has 0 dimensions (must be 1 to 4)"},
      {{1, 1, 1, 1, 1}, kTF32, "tensor 'x' has 5 dimensions (must be 1 to 4)"},
      {{4, 0}, kTF32, "tensor 'x' has dimension 1 of size 0 (must be positive)"},
      {{1ull << 63}, kTF32, "dimension 0 of size -9223372036854775808 (must be positive)"},
      {{UINT64_MAX, 2}, kTF32, "dimension 0 of size -1"},
      {{1ull << 32, 1ull << 32}, kTF32, "tensor 'x' has 2 dimensions whose product overflows int64"},
      {{1ull << 62, 2}, kTF32, "product overflows int64"},
      {{1ull << 61, 2}, kTF32, "tensor 'x' is too large"},  // 2^62 elements of 4 bytes
      {{33, 2}, kTQ8_0, "tensor 'x' has type Q8_0 with blocks of 32 elements, but its first dimension is 33"},
      {{16}, kTQ4_0, "type Q4_0 with blocks of 32 elements"},
      {{4}, 4, "tensor 'x' has unknown ggml type id 4"},
      {{4}, 31, "unknown ggml type id 31"},
      {{4}, 0xffffffff, "unknown ggml type id 4294967295"},
  };
  for (const Case& c : cases) {
    GgufBytes g = sample();
    g.tensors.push_back(gguf_tensor_info("x", c.dims, c.type, 128));
    g.data += std::string(256, '\0');
    EXPECT_IO_ERROR(open(g), "model.gguf", c.needle);
  }
}

TEST_F(GgufFileTest, AcceptsEveryTypeOfTheTableEvenOnesTheEngineDoesNotRun) {
  GgufBytes g;
  g.tensors = {gguf_tensor_info("blk.0.attn_q.weight", {256, 2}, kTIQ2_XS, 0)};
  g.data = std::string(2 * 74, '\0');
  const GgufFile file = open(g);
  EXPECT_EQ(file.tensors()[0].type, GgmlType::IQ2_XS);
  EXPECT_EQ(file.tensors()[0].data.size(), 148u);
}

TEST_F(GgufFileTest, RejectsMisplacedTensorData) {
  GgufBytes g = sample();
  g.tensors[1] = gguf_tensor_info("q", {32}, kTQ8_0, 40);
  g.data += std::string(64, '\0');
  EXPECT_IO_ERROR(open(g), "model.gguf", "tensor 'q' has offset 40, not a multiple of the alignment 32");
  g = sample();
  g.data.pop_back();  // the last tensor's last byte
  EXPECT_IO_ERROR(open(g), "model.gguf", "tensor 'q' (34 bytes at data offset 32) lies past the end of the file");
  g = sample();
  g.tensors[1] = gguf_tensor_info("q", {32}, kTQ8_0, UINT64_MAX - 31);  // begin + size wraps
  EXPECT_IO_ERROR(open(g), "tensor 'q'", "lies past the end of the file");
  g = sample();
  g.tensors[1] = gguf_tensor_info("q", {32}, kTQ8_0, 0);
  EXPECT_IO_ERROR(open(g), "model.gguf", "tensors 'w' (bytes 0..32) and 'q' (from byte 0) overlap");
  g = sample();  // overlap found whatever the order of the infos
  g.tensors = {gguf_tensor_info("late", {8}, kTF32, 64), gguf_tensor_info("a", {64}, kTF32, 0)};
  g.data = std::string(256, '\0');
  EXPECT_IO_ERROR(open(g), "tensors 'a' (bytes 0..256) and 'late' (from byte 64) overlap");
}

TEST_F(GgufFileTest, HonoursGeneralAlignment) {
  GgufBytes g = sample();
  g.kvs.push_back(gguf_kv("general.alignment", kU32, le32(64)));
  g.alignment = 64;
  g.tensors[1] = gguf_tensor_info("q", {32}, kTQ8_0, 64);
  g.data = pattern(64 + 34);
  const GgufFile file = open(g);
  EXPECT_EQ(file.alignment(), 64u);
  EXPECT_EQ(file.data_offset() % 64, 0u);
  EXPECT_EQ(file.data_offset(), g.build().size() - g.data.size());
  EXPECT_EQ(testing::as_string(file.find("q")->data), g.data.substr(64));

  g.tensors[1] = gguf_tensor_info("q", {32}, kTQ8_0, 32);  // fine at 32, not at 64
  EXPECT_IO_ERROR(open(g), "tensor 'q' has offset 32, not a multiple of the alignment 64");
  for (const uint32_t bad : {0u, 48u, 3u}) {
    g = sample();
    g.kvs.push_back(gguf_kv("general.alignment", kU32, le32(bad)));
    EXPECT_IO_ERROR(open(g), "model.gguf", fmt::format("general.alignment is {}, which is not a power of two", bad));
  }
  g = sample();
  g.kvs.push_back(gguf_kv("general.alignment", kU64, le64(32)));
  EXPECT_IO_ERROR(open(g), "model.gguf", "key 'general.alignment' is u64, not u32");
}

// Every proper prefix of a valid file is an Error: the last tensor ends the file, so no prefix
// still holds every tensor's bytes.
TEST_F(GgufFileTest, EveryTruncationIsAnError) {
  const std::string bytes = sample().build();
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_IO_ERROR(open(bytes.substr(0, n)), "model.gguf");
  }
  EXPECT_NO_THROW(open(bytes));
}

// Flipping any bit pattern of any header byte either still parses or is an Error, never a crash,
// hang or other exception.
TEST_F(GgufFileTest, FlippedHeaderBytesParseOrFailCleanly) {
  GgufBytes g = sample();
  g.kvs.push_back(gguf_kv("floats", kArray, le32(kF32) + le64(2) + le64(0)));
  g.kvs.push_back(gguf_kv("general.alignment", kU32, le32(32)));
  const std::string bytes = g.build();
  const size_t header_size = g.header().size();
  size_t parsed = 0;
  size_t failed = 0;
  for (size_t i = 0; i < header_size; ++i) {
    for (const int flip : {0x01, 0x80, 0xff}) {
      std::string corrupt = bytes;
      corrupt[i] = static_cast<char>(corrupt[i] ^ flip);
      try {
        const GgufFile file = open(corrupt);
        for (const auto key : file.keys()) (void)file.value(key).type_name();
        ++parsed;
      } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        ++failed;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "byte " << i << " ^ " << flip << ": non-Error exception " << e.what();
      }
    }
  }
  EXPECT_GT(parsed, 0u);  // e.g. a flipped letter in a key or string value
  EXPECT_GT(failed, 0u);
}

}  // namespace
}  // namespace llama3::io
