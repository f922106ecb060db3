#include "io/gguf_writer.h"

#include <gtest/gtest.h>

#include <thread>
#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>

#include "gguf_reader_dump.h"
#include "gguf_test_helpers.h"
#include "io/gguf_file.h"

namespace llama3::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

struct TensorSpec {
  std::string name;
  GgmlType type;
  std::vector<int64_t> dims;
  uint64_t bytes;
};

// Sizes from the block formats: Q8_0 34 bytes / 32, Q4_0 18 / 32, Q6_K 210 / 256. BF16's 20
// bytes leave padding before the next tensor.
const std::vector<TensorSpec> kTensors = {
    {"token_embd.weight", GgmlType::F32, {8, 3}, 96}, {"blk.0.attn_norm.weight", GgmlType::F16, {16}, 32},
    {"blk.0.odd", GgmlType::BF16, {5, 2}, 20},        {"blk.0.attn_q.weight", GgmlType::Q8_0, {64, 2}, 136},
    {"blk.0.ffn_up.weight", GgmlType::Q4_0, {32, 3, 1, 1}, 54}, {"output.weight", GgmlType::Q6_K, {256, 2}, 420},
};

std::string tensor_content(size_t index, uint64_t bytes) {
  std::string s;
  for (uint64_t i = 0; i < bytes; ++i) s += static_cast<char>((i * 131 + index * 17 + 3) & 0xff);
  return s;
}

void add_tensors(GgufWriter& writer) {
  for (size_t i = 0; i < kTensors.size(); ++i) {
    const TensorSpec& t = kTensors[i];
    writer.add_tensor(t.name, t.type, t.dims, t.bytes, [i, bytes = t.bytes](std::span<std::byte> out) {
      const std::string content = tensor_content(i, bytes);
      std::memcpy(out.data(), content.data(), out.size());
    });
  }
}

const std::vector<std::string> kTokens = {"<|begin_of_text|>", "", "h\xc3\xa9llo", std::string("a\0b", 3)};

void add_metadata(GgufWriter& w) {
  w.set_string("general.architecture", "llama");
  w.set_u8("u8", 255);
  w.set_i8("i8", -128);
  w.set_u16("u16", 65535);
  w.set_i16("i16", -32768);
  w.set_u32("u32", 4000000000u);
  w.set_i32("i32", -2000000000);
  w.set_u64("u64", UINT64_MAX);
  w.set_i64("i64", INT64_MIN);
  w.set_f32("f32", 1e-5f);
  w.set_f64("f64", -0.1);
  w.set_bool("yes", true);
  w.set_bool("no", false);
  w.set_string("empty", "");
  w.set_array("tokens", std::span<const std::string>(kTokens));
  const std::vector<std::string_view> merges = {"a b", "\xc4\xa0 t"};
  w.set_array("merges", std::span<const std::string_view>(merges));
  w.set_array("no_strings", std::span<const std::string>());
  w.set_array("no_ints", std::span<const int32_t>());
  const std::vector<int32_t> i32s = {1, -1, INT32_MIN};
  w.set_array("i32s", std::span<const int32_t>(i32s));
  const std::vector<uint8_t> u8s = {0, 255};
  w.set_array("u8s", std::span<const uint8_t>(u8s));
  const std::vector<int8_t> i8s = {-1};
  w.set_array("i8s", std::span<const int8_t>(i8s));
  const std::vector<uint16_t> u16s = {7};
  w.set_array("u16s", std::span<const uint16_t>(u16s));
  const std::vector<int16_t> i16s = {-7};
  w.set_array("i16s", std::span<const int16_t>(i16s));
  const std::vector<uint32_t> u32s = {UINT32_MAX};
  w.set_array("u32s", std::span<const uint32_t>(u32s));
  const std::vector<uint64_t> u64s = {1ull << 40};
  w.set_array("u64s", std::span<const uint64_t>(u64s));
  const std::vector<int64_t> i64s = {INT64_MIN, 3};
  w.set_array("i64s", std::span<const int64_t>(i64s));
  const std::vector<float> f32s = {0.5f, -1e30f, 3.14159f};
  w.set_array("f32s", std::span<const float>(f32s));
  const std::vector<double> f64s = {1e300, -2.5};
  w.set_array("f64s", std::span<const double>(f64s));
  const bool bools[] = {true, false, true};
  w.set_array("bools", std::span<const bool>(bools));
}

uint64_t round_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

class GgufWriterTest : public ::testing::Test {
 protected:
  // A temporary file the writer left beside the output (its own name: out.gguf.tmp.PID.RANDOM).
  bool temporary_left() const {
    for (const auto& e : fs::directory_iterator(dir_.path())) {
      if (e.path().filename().string().rfind(path_.filename().string() + ".tmp", 0) == 0) return true;
    }
    return false;
  }
  TempDir dir_{"io-gguf-writer"};
  fs::path path_ = dir_.path() / "out.gguf";
};

class GgufRoundTripTest : public GgufWriterTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(GgufRoundTripTest, EveryMetadataTypeAndTensorReadsBackIdentical) {
  const uint32_t alignment = GetParam();
  GgufWriter writer(alignment);
  add_metadata(writer);
  add_tensors(writer);
  writer.write(path_);
  EXPECT_FALSE(temporary_left());

  const GgufFile file(path_);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), alignment);
  EXPECT_EQ(file.find_uint("general.alignment"), alignment == 32 ? std::nullopt : std::optional<uint64_t>(alignment));
  EXPECT_EQ(file.get_string("general.architecture"), "llama");
  EXPECT_EQ(file.type_of("u8"), GgufType::U8);
  EXPECT_EQ(file.get_uint("u8"), 255u);
  EXPECT_EQ(file.type_of("i8"), GgufType::I8);
  EXPECT_EQ(file.get_int("i8"), -128);
  EXPECT_EQ(file.type_of("u16"), GgufType::U16);
  EXPECT_EQ(file.get_uint("u16"), 65535u);
  EXPECT_EQ(file.type_of("i16"), GgufType::I16);
  EXPECT_EQ(file.get_int("i16"), -32768);
  EXPECT_EQ(file.type_of("u32"), GgufType::U32);
  EXPECT_EQ(file.get_uint("u32"), 4000000000u);
  EXPECT_EQ(file.type_of("i32"), GgufType::I32);
  EXPECT_EQ(file.get_int("i32"), -2000000000);
  EXPECT_EQ(file.type_of("u64"), GgufType::U64);
  EXPECT_EQ(file.get_uint("u64"), UINT64_MAX);
  EXPECT_EQ(file.type_of("i64"), GgufType::I64);
  EXPECT_EQ(file.get_int("i64"), INT64_MIN);
  EXPECT_EQ(file.type_of("f32"), GgufType::F32);
  EXPECT_EQ(file.get_float("f32"), static_cast<double>(1e-5f));  // exact: f32 widened to double
  EXPECT_EQ(file.type_of("f64"), GgufType::F64);
  EXPECT_EQ(file.get_float("f64"), -0.1);
  EXPECT_TRUE(file.get_bool("yes"));
  EXPECT_FALSE(file.get_bool("no"));
  EXPECT_EQ(file.get_string("empty"), "");
  const auto tokens = file.get_string_array("tokens");
  ASSERT_EQ(tokens.size(), kTokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i], kTokens[i]);
  EXPECT_EQ(file.get_string_array("merges"), (std::vector<std::string_view>{"a b", "\xc4\xa0 t"}));
  EXPECT_EQ(file.value("no_strings").element_type(), GgufType::STRING);
  EXPECT_TRUE(file.get_string_array("no_strings").empty());
  EXPECT_EQ(file.value("no_ints").element_type(), GgufType::I32);
  EXPECT_TRUE(file.get_int_array("no_ints").empty());
  EXPECT_EQ(file.get_int_array("i32s"), (std::vector<int64_t>{1, -1, INT32_MIN}));
  EXPECT_EQ(file.get_int_array("u8s"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(file.get_int_array("i8s"), (std::vector<int64_t>{-1}));
  EXPECT_EQ(file.get_int_array("u16s"), (std::vector<int64_t>{7}));
  EXPECT_EQ(file.get_int_array("i16s"), (std::vector<int64_t>{-7}));
  EXPECT_EQ(file.get_int_array("u32s"), (std::vector<int64_t>{UINT32_MAX}));
  EXPECT_EQ(file.get_int_array("u64s"), (std::vector<int64_t>{1ll << 40}));
  EXPECT_EQ(file.get_int_array("i64s"), (std::vector<int64_t>{INT64_MIN, 3}));
  EXPECT_EQ(file.get_float_array("f32s"),
            (std::vector<double>{0.5, static_cast<double>(-1e30f), static_cast<double>(3.14159f)}));
  EXPECT_EQ(file.get_float_array("f64s"), (std::vector<double>{1e300, -2.5}));
  const GgufValue& bools = file.value("bools");
  ASSERT_EQ(bools.count(), 3u);
  EXPECT_EQ(bools.element_type(), GgufType::BOOL);
  EXPECT_TRUE(std::get<bool>(bools.element(0)));
  EXPECT_FALSE(std::get<bool>(bools.element(1)));
  const std::vector<std::string_view> keys = file.keys();
  ASSERT_GE(keys.size(), 2u);
  EXPECT_EQ(keys[alignment == 32 ? 0 : 1], "general.architecture");  // insertion order
  EXPECT_EQ(keys.back(), "bools");

  ASSERT_EQ(file.tensors().size(), kTensors.size());
  uint64_t expected_offset = 0;
  for (size_t i = 0; i < kTensors.size(); ++i) {
    const GgufTensor& t = file.tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, kTensors[i].name);
    EXPECT_EQ(t.type, kTensors[i].type);
    EXPECT_EQ(t.dims, kTensors[i].dims);
    EXPECT_EQ(t.offset, expected_offset);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data.data()) % alignment, 0u);
    EXPECT_EQ(testing::as_string(t.data), tensor_content(i, kTensors[i].bytes));
    expected_offset += round_up(kTensors[i].bytes, alignment);
  }
  // The last tensor is padded too, as llama.cpp's writer does.
  EXPECT_EQ(file.bytes().size(), file.data_offset() + expected_offset);
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufRoundTripTest, ::testing::Values(32u, 64u));

// The layout byte for byte, against the hand-built form of the format description.
TEST_F(GgufWriterTest, WritesTheDocumentedLayout) {
  GgufWriter writer;
  writer.set_u32("n", 7);
  writer.set_array("s", std::span<const std::string>(std::vector<std::string>{"ab"}));
  const int64_t dims[] = {2, 1};
  writer.add_tensor("t", GgmlType::F32, dims, 8, [](std::span<std::byte> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::byte(i + 1);
  });
  writer.write(path_);

  testing::GgufBytes g;
  g.kvs = {testing::gguf_kv("n", 4, testing::le32(7)),
           testing::gguf_kv("s", 9, testing::le32(8) + testing::le64(1) + testing::gguf_str("ab"))};
  g.tensors = {testing::gguf_tensor_info("t", {2, 1}, 0, 0)};
  g.data = std::string("\1\2\3\4\5\6\7\x08", 8) + std::string(24, '\0');
  EXPECT_EQ(testing::read_text(path_), g.build());
}

TEST_F(GgufWriterTest, RejectsBadMetadataAndTensors) {
  EXPECT_IO_ERROR(GgufWriter(0), "alignment 0 is not a power of two");
  EXPECT_IO_ERROR(GgufWriter(48), "alignment 48 is not a power of two");
  GgufWriter w;
  w.set_u32("k", 1);
  EXPECT_IO_ERROR(w.set_string("k", "x"), "metadata key 'k' is set twice");
  EXPECT_IO_ERROR(w.set_u8("", 1), "empty metadata key");
  EXPECT_IO_ERROR(w.set_u32("general.alignment", 64), "general.alignment is set by the writer's alignment");
  GgufWriter aligned(64);
  EXPECT_IO_ERROR(aligned.set_u32("general.alignment", 64), "general.alignment");

  const auto fill = [](std::span<std::byte>) {};
  const int64_t dims[] = {32, 2};
  w.add_tensor("a", GgmlType::Q8_0, dims, 68, fill);
  EXPECT_IO_ERROR(w.add_tensor("a", GgmlType::F32, dims, 256, fill), "tensor 'a' is added twice");
  EXPECT_IO_ERROR(w.add_tensor("b", GgmlType::Q8_0, dims, 64, fill),
                  "tensor 'b' of type Q8_0 and dims [32, 2] takes 68 bytes, not 64");
  const int64_t odd[] = {33, 2};
  EXPECT_IO_ERROR(w.add_tensor("b", GgmlType::Q8_0, odd, 68, fill), "tensor 'b' has type Q8_0 with blocks of 32");
  const int64_t zero[] = {4, 0};
  EXPECT_IO_ERROR(w.add_tensor("b", GgmlType::F32, zero, 0, fill), "dimension 1 of size 0");
  const int64_t five[] = {1, 1, 1, 1, 1};
  EXPECT_IO_ERROR(w.add_tensor("b", GgmlType::F32, five, 4, fill), "has 5 dimensions");
  EXPECT_IO_ERROR(w.add_tensor("b", GgmlType::F32, {}, 4, fill), "has 0 dimensions");
  const int64_t four[] = {4};
  EXPECT_IO_ERROR(w.add_tensor(std::string(64, 'x'), GgmlType::F32, four, 16, fill),
                  "has a name of 64 bytes (llama.cpp reads at most 63)");
  EXPECT_IO_ERROR(w.add_tensor("", GgmlType::F32, four, 16, fill), "empty tensor name");
  EXPECT_IO_ERROR(w.add_tensor("b", GgmlType::F32, four, 16, nullptr), "tensor 'b' has no fill function");
  w.add_tensor(std::string(63, 'x'), GgmlType::F32, four, 16, fill);
}

TEST_F(GgufWriterTest, AFailingFillLeavesNoFileBehind) {
  testing::write_file(path_, "old");
  GgufWriter writer;
  const int64_t dims[] = {4};
  writer.add_tensor("a", GgmlType::F32, dims, 16, [](std::span<std::byte>) {
    throw Error("converter failed");
  });
  EXPECT_IO_ERROR(writer.write(path_), "converter failed");
  EXPECT_EQ(testing::read_text(path_), "old");
  EXPECT_FALSE(temporary_left());
}

// Several writers of one file at once (a mesh's data-parallel groups caching the same share):
// each writes a temporary of its own and renames a whole file, so the file is always whole.
TEST_F(GgufWriterTest, WritersOfOneFileAtOnceLeaveAWholeFile) {
  auto write = [&] {
    GgufWriter writer;
    const int64_t dims[] = {1 << 18};
    writer.add_tensor("a", GgmlType::F32, dims, size_t{1} << 20, [](std::span<std::byte> b) {
      for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::byte>(i * 7);
    });
    writer.write(path_);
  };
  std::vector<std::thread> writers;
  for (int i = 0; i < 4; ++i) writers.emplace_back(write);
  for (std::thread& t : writers) t.join();
  const GgufFile file(path_);
  const GgufTensor* a = file.find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->data.size(), size_t{1} << 20);
  for (size_t i = 0; i < a->data.size(); i += 4093) ASSERT_EQ(a->data[i], static_cast<std::byte>(i * 7)) << i;
  EXPECT_FALSE(temporary_left());
}

TEST_F(GgufWriterTest, DiskErrorsAreErrorsNamingTheFile) {
  GgufWriter writer;
  const int64_t dims[] = {1024};
  writer.add_tensor("a", GgmlType::F32, dims, 4096, [](std::span<std::byte>) {});
  EXPECT_IO_ERROR(writer.write(dir_.path() / "missing" / "x.gguf"), "cannot create",
                  "missing/x.gguf.tmp", "No such file or directory");

  // A file size limit makes write(2) fail part way, as a full disk would.
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  EXPECT_IO_ERROR(writer.write(path_), "cannot write", "out.gguf.tmp", "File too large");
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(fs::exists(path_));
  EXPECT_FALSE(temporary_left());
}

// --- cross-check against an independent parser (@huggingface/gguf, installed by setup.sh) ---

TEST_P(GgufRoundTripTest, AnIndependentParserReadsWhatOurReaderReads) {
  const fs::path modules = fs::path(LLAMA3_SOURCE_DIR) / ".cache/npm/node_modules";
  if (testing::run_command("command -v node").exit_code != 0) {
    GTEST_SKIP() << "node is not on PATH (scripts/setup.sh installs it)";
  }
  if (!fs::exists(modules / "@huggingface/gguf/package.json")) {
    GTEST_SKIP() << "@huggingface/gguf is not in " << modules.string() << " (run scripts/setup.sh)";
  }
  GgufWriter writer(GetParam());
  add_metadata(writer);
  add_tensors(writer);
  writer.write(path_);

  const auto result = testing::run_command(fmt::format(
      "node '{}/tests/io/gguf_dump.cjs' '{}' '{}'", LLAMA3_SOURCE_DIR, modules.string(), path_.string()));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const json theirs = json::parse(result.out);
  const json ours = testing::reader_dump(GgufFile(path_));
  ASSERT_EQ(theirs["metadata"].size(), ours["metadata"].size());
  for (size_t i = 0; i < ours["metadata"].size(); ++i) {
    EXPECT_EQ(theirs["metadata"][i], ours["metadata"][i]);
  }
  EXPECT_EQ(theirs["tensors"], ours["tensors"]);
  for (const char* field : {"version", "tensor_count", "kv_count", "data_offset"}) {
    EXPECT_EQ(theirs[field], ours[field]) << field;
  }
}

}  // namespace
}  // namespace llama3::io
