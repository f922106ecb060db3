#include "io/safetensors_folder.h"

#include <gtest/gtest.h>

#include "io_test_helpers.h"

namespace llama3::io {
namespace {

using testing::le64;
using testing::TempDir;
using testing::write_file;

// A safetensors file of F16 vectors, each named tensor holding `values` bytes "<name>:..".
std::string shard(const std::vector<std::pair<std::string, std::string>>& tensors) {
  std::string header = "{";
  std::string data;
  for (const auto& [name, bytes] : tensors) {
    if (header.size() > 1) header += ",";
    header += fmt::format(R"("{}":{{"dtype":"F16","shape":[{}],"data_offsets":[{},{}]}})", name,
                          bytes.size() / 2, data.size(), data.size() + bytes.size());
    data += bytes;
  }
  header += "}";
  return le64(header.size()) + header + data;
}

class SafetensorsFolderTest : public ::testing::Test {
 protected:
  void file(const std::string& name, const std::string& bytes) { write_file(dir_ / name, bytes); }
  void index(const std::string& weight_map) {
    file("model.safetensors.index.json",
         R"({"metadata":{"total_size":0},"weight_map":)" + weight_map + "}");
  }
  TempDir dir_{"io-folder"};
};

TEST_F(SafetensorsFolderTest, ReadsSingleFile) {
  file("model.safetensors", shard({{"b", "b1b2"}, {"a", "a1"}}));
  const SafetensorsFolder folder(dir_.path());
  EXPECT_EQ(folder.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(folder.shard_count(), 1u);
  ASSERT_NE(folder.find("b"), nullptr);
  EXPECT_EQ(testing::as_string(folder.find("b")->data), "b1b2");
  EXPECT_EQ(folder.find("c"), nullptr);
}

TEST_F(SafetensorsFolderTest, ReadsShardsThroughTheIndex) {
  file("model-00001-of-00002.safetensors", shard({{"a", "aaaa"}, {"b", "bb"}}));
  // "extra" is in a shard but not in weight_map: still exposed (all tensors of all shards).
  file("model-00002-of-00002.safetensors", shard({{"c", "cccccc"}, {"extra", "ee"}}));
  index(R"({"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors",)"
        R"("c":"model-00002-of-00002.safetensors"})");
  const SafetensorsFolder folder(dir_.path());
  EXPECT_EQ(folder.shard_count(), 2u);
  EXPECT_EQ(folder.names(), (std::vector<std::string>{"a", "b", "c", "extra"}));
  EXPECT_EQ(testing::as_string(folder.find("a")->data), "aaaa");
  EXPECT_EQ(testing::as_string(folder.find("c")->data), "cccccc");
  EXPECT_EQ(folder.find("c")->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(testing::as_string(folder.find("extra")->data), "ee");
}

TEST_F(SafetensorsFolderTest, PrefersTheIndexOverASingleFile) {
  file("model.safetensors", shard({{"old", "oo"}}));
  file("s1.safetensors", shard({{"new", "nn"}}));
  index(R"({"new":"s1.safetensors"})");
  const SafetensorsFolder folder(dir_.path());
  EXPECT_EQ(folder.names(), (std::vector<std::string>{"new"}));
}

TEST_F(SafetensorsFolderTest, RejectsBrokenFolders) {
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), dir_.path().string(),
                  "no model.safetensors or model.safetensors.index.json");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path() / std::string(300, 'd')), "cannot be looked up: File name too long");

  file("s1.safetensors", shard({{"a", "aa"}, {"b", "bb"}}));
  file("s2.safetensors", shard({{"c", "cc"}, {"a", "a2"}}));

  index(R"({"a":"s1.safetensors","x":"missing.safetensors"})");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "model.safetensors.index.json",
                  "shard 'missing.safetensors' (holding tensor 'x') not found");

  index(R"({"c":"s1.safetensors"})");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()),
                  "weight_map puts tensor 'c' in", "s1.safetensors, which lacks it");

  index(R"({"a":"s1.safetensors","c":"s2.safetensors"})");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "tensor 'a' is in both", "s1.safetensors",
                  "s2.safetensors");

  // Names the file system refuses are errors about the index, not std::filesystem exceptions
  // (the fuzzer's finding: a 300-byte name, past NAME_MAX).
  index(R"({"a":")" + std::string(300, 'n') + R"(.safetensors"})");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "(holding tensor 'a') File name too long");
  std::filesystem::create_directory(dir_.path() / "folder.safetensors");
  index(R"({"a":"folder.safetensors"})");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "shard 'folder.safetensors' (holding tensor 'a') is not a regular file");

  index(R"({"a":"../s1.safetensors"})");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "names '../s1.safetensors', not a file");
  index(R"({"a":"/etc/passwd"})");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "not a file in the folder");
  index(R"({"a":7})");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "weight_map entry 'a' is a JSON number");
  index("{}");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "weight_map is empty");
  index("[]");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "expected an object with a \"weight_map\"");
  file("model.safetensors.index.json", "{\"weight_map\":");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "model.safetensors.index.json: not valid JSON");

  // A corrupt shard is reported with the shard's own name.
  file("s3.safetensors", le64(99) + "{}");
  index(R"({"z":"s3.safetensors"})");
  EXPECT_IO_ERROR(SafetensorsFolder(dir_.path()), "s3.safetensors: safetensors header length 99");
}

}  // namespace
}  // namespace llama3::io
