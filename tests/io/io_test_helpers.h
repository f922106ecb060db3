#pragma once
// Shared by the io tests: the error matcher, little-endian byte builders, a stored-zip writer for
// hand-made archives, and the PyTorch fixtures written once by tests/io/write_pth_fixtures.py.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "io/tensor_info.h"
#include "test_support.h"

namespace llama3::io::testing {

using llama3::testing::read_text;
using llama3::testing::run_command;
using llama3::testing::TempDir;

// Replaces a file by unlinking it first: truncating and rewriting an existing file makes ext4
// flush it to disk on close (auto_da_alloc), which slows the fuzz loops a hundredfold.
inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::remove(path);
  llama3::testing::write_text(path, bytes);
}

// Passes when fn throws llama3::Error whose message is one line containing every needle.
// LLAMA3_IO_PRINT_ERRORS=1 prints each matched message, to review their wording.
template <typename Fn>
::testing::AssertionResult throws_error(Fn&& fn, std::initializer_list<std::string_view> needles) {
  try {
    fn();
  } catch (const llama3::Error& e) {
    const std::string message = e.what();
    if (message.find('\n') != std::string::npos) {
      return ::testing::AssertionFailure() << "message has several lines: " << message;
    }
    for (const std::string_view needle : needles) {
      if (message.find(needle) == std::string::npos) {
        return ::testing::AssertionFailure() << "message \"" << message << "\" lacks \"" << needle
                                             << "\"";
      }
    }
    if (std::getenv("LLAMA3_IO_PRINT_ERRORS")) std::fprintf(stderr, "error: %s\n", message.c_str());
    return ::testing::AssertionSuccess() << message;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-llama3::Error: " << e.what();
  }
  return ::testing::AssertionFailure() << "threw nothing";
}

// EXPECT_IO_ERROR(SafetensorsFile(path), "x.safetensors", "overlap"): throws llama3::Error whose
// message contains each substring.
#define EXPECT_IO_ERROR(expr, ...) \
  EXPECT_TRUE(::llama3::io::testing::throws_error([&] { (void)(expr); }, {__VA_ARGS__}))

inline std::string le(uint64_t v, size_t bytes) {
  std::string out;
  for (size_t i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}
inline std::string le16(uint64_t v) { return le(v, 2); }
inline std::string le32(uint64_t v) { return le(v, 4); }
inline std::string le64(uint64_t v) { return le(v, 8); }

inline std::string as_string(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// A stored (uncompressed) zip, written independently of the reader under test. `method` and
// `flags` let a test write a compressed or encrypted-looking entry.
struct ZipItem {
  std::string name;
  std::string data;
  uint16_t method = 0;
  uint16_t flags = 0;
};
inline std::string make_zip(const std::vector<ZipItem>& items) {
  std::string out;
  std::string central;
  for (const ZipItem& it : items) {
    const size_t offset = out.size();
    out += le32(0x04034b50) + le16(20) + le16(it.flags) + le16(it.method) + le32(0) + le32(0) +
           le32(it.data.size()) + le32(it.data.size()) + le16(it.name.size()) + le16(0) +
           it.name + it.data;
    central += le32(0x02014b50) + le16(20) + le16(20) + le16(it.flags) + le16(it.method) +
               le32(0) + le32(0) + le32(it.data.size()) + le32(it.data.size()) +
               le16(it.name.size()) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) +
               le32(offset) + it.name;
  }
  const size_t cd_offset = out.size();
  out += central;
  out += le32(0x06054b50) + le16(0) + le16(0) + le16(items.size()) + le16(items.size()) +
         le32(central.size()) + le32(cd_offset) + le16(0);
  return out;
}

// The PyTorch fixtures. Importing torch costs seconds and ctest runs every test in its own
// process, so they are written once per version of the script into the build tree (generated
// at test time, never committed) and shared by later test processes.
inline const std::filesystem::path& pth_fixture_dir() {
  static const std::filesystem::path dir = [] {
    namespace fs = std::filesystem;
    const fs::path script = fs::path(LLAMA3_SOURCE_DIR) / "tests/io/write_pth_fixtures.py";
    const size_t hash = std::hash<std::string>{}(read_text(script));
    const fs::path target =
        fs::path(LLAMA3_BINARY_DIR) / "test-fixtures" / fmt::format("io-pth-{:016x}", hash);
    if (fs::exists(target / "expected.json")) return target;
    const fs::path tmp = target.string() + fmt::format(".tmp-{}", ::getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    const auto result = run_command(fmt::format("'{}' '{}' '{}'", LLAMA3_PYTHON, script.string(),
                                                tmp.string()));
    if (result.exit_code != 0) {
      throw std::runtime_error("write_pth_fixtures.py failed: " + result.err);
    }
    std::error_code ec;
    fs::rename(tmp, target, ec);  // another test process may have won the race: fine
    if (ec) fs::remove_all(tmp);
    return target;
  }();
  return dir;
}

struct ExpectedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

inline DType dtype_from_torch(const std::string& name) {
  static const std::map<std::string, DType> kTable = {
      {"float32", DType::F32}, {"float16", DType::F16}, {"bfloat16", DType::BF16},
      {"int64", DType::I64},   {"int32", DType::I32},   {"int8", DType::I8},
      {"uint8", DType::U8},    {"bool", DType::BOOL}};
  return kTable.at(name);
}

// What the Python side recorded for `file` (a name in pth_fixture_dir()).
inline std::vector<ExpectedTensor> expected_tensors(const std::string& file) {
  static const nlohmann::json all =
      nlohmann::json::parse(read_text(pth_fixture_dir() / "expected.json"));
  std::vector<ExpectedTensor> out;
  for (const auto& row : all.at(file)) {
    ExpectedTensor t;
    t.name = row.at("name");
    t.dtype = dtype_from_torch(row.at("dtype"));
    t.shape = row.at("shape").get<std::vector<int64_t>>();
    const std::string hex = row.at("hex");
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      t.bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Same names in the same order, same dtypes and shapes, and bit-identical bytes (exact: the
// reader must hand out the stored bits untouched, NaN payloads and -0.0 included).
inline void expect_same_tensors(const std::vector<TensorInfo>& actual,
                                const std::vector<ExpectedTensor>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    SCOPED_TRACE(expected[i].name);
    EXPECT_EQ(actual[i].name, expected[i].name);
    EXPECT_EQ(actual[i].dtype, expected[i].dtype);
    EXPECT_EQ(actual[i].shape, expected[i].shape);
    EXPECT_EQ(actual[i].data.size(),
              static_cast<size_t>(actual[i].numel()) * dtype_size(actual[i].dtype));
    EXPECT_EQ(as_string(actual[i].data), expected[i].bytes);
  }
}

}  // namespace llama3::io::testing
