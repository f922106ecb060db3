#include "io/safetensors_file.h"

#include <gtest/gtest.h>

#include "io/safetensors_writer.h"
#include "io_test_helpers.h"

namespace llama3::io {
namespace {

using testing::le64;
using testing::TempDir;
using testing::write_file;

std::string safetensors(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::string entry(const std::string& dtype, const std::string& shape, uint64_t begin,
                  uint64_t end) {
  return fmt::format(R"({{"dtype":"{}","shape":{},"data_offsets":[{},{}]}})", dtype, shape, begin,
                     end);
}

std::string pattern(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>((i * 37 + 11) & 0xff);
  return s;
}

class SafetensorsFileTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& bytes) {
    const auto path = dir_ / "model.safetensors";
    write_file(path, bytes);
    return path;
  }
  TempDir dir_{"io-safetensors"};
};

TEST_F(SafetensorsFileTest, ReadsEveryDtypeInOffsetOrderWithoutCopying) {
  // Header order differs from data order: tensors() follows the data.
  const std::string header = "{" + fmt::format(
      R"("b":{},"a":{},"h":{},"s":{},"l":{},"i":{},"c":{},"u":{},"t":{},)"
      R"("__metadata__":{{"format":"pt","note":"x"}})",
      entry("BF16", "[]", 16, 18), entry("F32", "[2,2]", 0, 16), entry("F16", "[3]", 18, 24),
      entry("I64", "[1]", 24, 32), entry("I32", "[2]", 32, 40), entry("I8", "[3]", 40, 43),
      entry("U8", "[1]", 43, 44), entry("BOOL", "[2]", 44, 46), entry("F32", "[0,5]", 46, 46)) +
      "}";
  const std::string data = pattern(46);
  const SafetensorsFile file(write(safetensors(header, data)));

  const std::vector<std::string> order = {"a", "b", "h", "s", "l", "i", "c", "u", "t"};
  ASSERT_EQ(file.tensors().size(), order.size());
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(file.tensors()[i].name, order[i]);

  const TensorInfo* a = file.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::F32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a->numel(), 4);
  EXPECT_EQ(testing::as_string(a->data), data.substr(0, 16));
  const TensorInfo* b = file.find("b");
  EXPECT_EQ(b->dtype, DType::BF16);
  EXPECT_TRUE(b->shape.empty());
  EXPECT_EQ(b->numel(), 1);
  EXPECT_EQ(testing::as_string(b->data), data.substr(16, 2));
  // Views into one mapping: consecutive tensors are adjacent in memory.
  EXPECT_EQ(b->data.data(), a->data.data() + 16);
  EXPECT_EQ(file.find("h")->dtype, DType::F16);
  EXPECT_EQ(file.find("s")->dtype, DType::I64);
  EXPECT_EQ(file.find("l")->dtype, DType::I32);
  EXPECT_EQ(file.find("i")->dtype, DType::I8);
  EXPECT_EQ(file.find("c")->dtype, DType::U8);
  EXPECT_EQ(file.find("u")->dtype, DType::BOOL);
  EXPECT_EQ(testing::as_string(file.find("u")->data), data.substr(44, 2));
  EXPECT_EQ(file.find("t")->numel(), 0);
  EXPECT_TRUE(file.find("t")->data.empty());
  EXPECT_EQ(file.find("missing"), nullptr);
  EXPECT_EQ(file.find(""), nullptr);
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "x"}}));
}

TEST_F(SafetensorsFileTest, AcceptsPaddedHeaderAndEmptyFile) {
  // The reference writer pads the header with spaces to a multiple of 8 bytes.
  const SafetensorsFile padded(write(safetensors("{\"w\":" + entry("F16", "[2]", 0, 4) + "}   ",
                                                 "abcd")));
  EXPECT_EQ(testing::as_string(padded.find("w")->data), "abcd");
  const SafetensorsFile empty(write(safetensors("{}", "")));
  EXPECT_TRUE(empty.tensors().empty());
  EXPECT_TRUE(empty.metadata().empty());
}

struct BadCase {
  const char* label;
  std::string bytes;
  std::string needle;
};

TEST_F(SafetensorsFileTest, RejectsCorruptFilesWithOneLineErrors) {
  const std::string w4 = entry("F32", "[1]", 0, 4);
  const std::vector<BadCase> cases = {
      {"empty file", "", "too small"},
      {"7 bytes", std::string("\x02\0\0\0\0\0\0", 7), "too small"},
      {"header length past end", le64(1000) + "{}", "header length 1000 is past the end"},
      {"huge header length", le64(uint64_t{1} << 63) + "{}", "past the end of the file"},
      {"bad json", safetensors("{not json", ""), "not valid JSON"},
      {"truncated json", safetensors("{\"w\":{\"dtype\"", ""), "not valid JSON"},
      {"json array", safetensors("[]", ""), "JSON array, expected an object"},
      {"json string", safetensors("\"x\"", ""), "JSON string, expected an object"},
      {"entry not object", safetensors(R"({"w":3})", ""), "tensor 'w': entry is a JSON number"},
      {"missing dtype", safetensors(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"),
       "tensor 'w': missing field 'dtype'"},
      {"missing shape", safetensors(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"),
       "missing field 'shape'"},
      {"missing offsets", safetensors(R"({"w":{"dtype":"F32","shape":[1]}})", "abcd"),
       "missing field 'data_offsets'"},
      {"unknown field",
       safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", "abcd"),
       "unknown field 'x'"},
      {"dtype not string", safetensors(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})",
                                       "abcd"),
       "dtype is a JSON number"},
      {"unknown dtype", safetensors("{\"w\":" + entry("F64", "[1]", 0, 8) + "}", "abcdefgh"),
       "unsupported dtype 'F64'"},
      {"shape not array", safetensors("{\"w\":" + entry("F32", "\"4\"", 0, 4) + "}", "abcd"),
       "shape is a JSON string"},
      {"negative dim", safetensors("{\"w\":" + entry("F32", "[-1]", 0, 4) + "}", "abcd"),
       "negative integer"},
      {"float dim", safetensors("{\"w\":" + entry("F32", "[1.5]", 0, 4) + "}", "abcd"),
       "non-integer number"},
      {"dim above int64", safetensors("{\"w\":" + entry("U8", "[18446744073709551615]", 0, 4) +
                                      "}", "abcd"),
       "too large"},
      {"shape overflow",
       safetensors("{\"w\":" + entry("F32", "[4294967296,4294967296,16]", 0, 4) + "}", "abcd"),
       "overflows"},
      {"bytes overflow",
       safetensors("{\"w\":" + entry("I64", "[2305843009213693952]", 0, 4) + "}", "abcd"),
       "overflows"},
      {"offsets one value", safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})",
                                        "abcd"),
       "data_offsets must be an array [begin, end]"},
      {"offsets object",
       safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":{"a":1}}})", "abcd"),
       "data_offsets must be an array"},
      {"negative offset",
       safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,4]}})", "abcd"),
       "data_offsets[0] holds a negative integer"},
      {"begin after end", safetensors("{\"w\":" + entry("F32", "[1]", 8, 4) + "}", "abcdefgh"),
       "begin after end"},
      {"offsets past end", safetensors("{\"w\":" + entry("F32", "[4]", 0, 16) + "}", "abcdefgh"),
       "past the end of the data (8 bytes)"},
      {"wrong byte length", safetensors("{\"w\":" + entry("F32", "[3]", 0, 8) + "}", "abcdefgh"),
       "hold 8 bytes but F32 [3] needs 12"},
      {"overlap", safetensors("{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"b\":" +
                              entry("F32", "[2]", 4, 12) + "}", pattern(12)),
       "tensor 'b': data_offsets [4, 12] overlap tensor 'a'"},
      {"same range twice", safetensors("{\"a\":" + w4 + ",\"b\":" + w4 + "}", "abcd"), "overlap"},
      {"hole", safetensors("{\"a\":" + w4 + ",\"b\":" + entry("F32", "[1]", 8, 12) + "}",
                           pattern(12)),
       "data bytes [4, 8) belong to no tensor"},
      {"trailing bytes", safetensors("{\"a\":" + w4 + "}", pattern(9)),
       "5 bytes after the last tensor"},
      {"duplicate name", safetensors("{\"a\":" + w4 + ",\"a\":" + w4 + "}", "abcd"),
       "duplicate key 'a'"},
      {"metadata not object", safetensors(R"({"__metadata__":[1]})", ""),
       "__metadata__ is a JSON array"},
      {"metadata not string", safetensors(R"({"__metadata__":{"k":1}})", ""),
       "__metadata__ 'k' is a JSON number"},
      {"control bytes in name", safetensors("{\"a\\nb\\u0000\":" + entry("Q4", "[1]", 0, 1) + "}",
                                            "a"),
       "tensor 'a\\x0ab\\x00': unsupported dtype 'Q4'"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.label);
    const auto path = write(c.bytes);
    EXPECT_IO_ERROR(SafetensorsFile(path), "model.safetensors", c.needle);
  }
}

// The engine's own writer (io/safetensors_writer.h) must produce files this strict reader takes.
TEST_F(SafetensorsFileTest, ReadsWhatTheWriterWrites) {
  const std::string a = pattern(24);
  const std::string b = pattern(6);
  const auto bytes = [](const std::string& s) {
    return std::span(reinterpret_cast<const std::byte*>(s.data()), s.size());
  };
  const std::vector<TensorToWrite> tensors = {{"a", DType::F32, {2, 3}, bytes(a)},
                                              {"empty", DType::BF16, {0, 4}, {}},
                                              {"b", DType::BF16, {3}, bytes(b)}};
  const auto path = dir_ / "written.safetensors";
  write_safetensors(path, tensors, {{"format", "pt"}});
  const SafetensorsFile file(path);
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(testing::as_string(file.find("a")->data), a);
  EXPECT_EQ(file.find("a")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(file.find("empty")->numel(), 0);
  EXPECT_EQ(testing::as_string(file.find("b")->data), b);
  EXPECT_EQ(file.metadata().at("format"), "pt");
}

TEST_F(SafetensorsFileTest, MissingFileIsAnError) {
  EXPECT_IO_ERROR(SafetensorsFile(dir_ / "absent.safetensors"), "absent.safetensors");
}

// A valid file cut short anywhere must be refused: the data section no longer matches the header.
TEST_F(SafetensorsFileTest, EveryTruncationIsAnError) {
  const std::string full = safetensors(
      "{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"b\":" + entry("BF16", "[3]", 8, 14) + "}",
      pattern(14));
  ASSERT_NO_THROW(SafetensorsFile(write(full)));
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    const auto path = write(full.substr(0, n));
    EXPECT_IO_ERROR(SafetensorsFile(path), "model.safetensors");
  }
}

// Any single corrupted byte either still parses (then every view lies inside the file) or gives
// a llama3::Error; never a crash or another exception type.
TEST_F(SafetensorsFileTest, CorruptedBytesNeverEscapeTheFile) {
  const std::string full = safetensors(
      "{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"b\":" + entry("BF16", "[3]", 8, 14) +
          ",\"__metadata__\":{\"k\":\"v\"}}",
      pattern(14));
  size_t accepted = 0;
  for (size_t pos = 0; pos < full.size(); ++pos) {
    for (const int value : {0x00, 0x01, int{'"'}, int{'9'}, int{'['}, int{'{'}, 0x7f, 0xff}) {
      std::string bytes = full;
      bytes[pos] = static_cast<char>(value);
      const auto path = write(bytes);
      try {
        const SafetensorsFile file(path);
        ++accepted;
        for (const TensorInfo& t : file.tensors()) {
          EXPECT_EQ(t.data.size(), static_cast<size_t>(t.numel()) * dtype_size(t.dtype));
        }
      } catch (const llama3::Error&) {
      }
    }
  }
  EXPECT_GT(accepted, 0u);  // changes inside the data section are harmless
}

}  // namespace
}  // namespace llama3::io
