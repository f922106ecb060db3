#include "io/pth_file.h"

#include <gtest/gtest.h>

#include "io/zip_archive.h"
#include "io_test_helpers.h"

namespace llama3::io {
namespace {

using testing::expect_same_tensors;
using testing::expected_tensors;
using testing::pth_fixture_dir;
using namespace std::string_literals;

// Every fixture torch.save wrote (and the re-packed zips) reads back with the exact bytes,
// names, order, dtypes and shapes that Python recorded.
class PthFileReads : public ::testing::TestWithParam<const char*> {};

TEST_P(PthFileReads, SameTensorsAsTorch) {
  const PthFile file(pth_fixture_dir() / GetParam());
  expect_same_tensors(file.tensors(), expected_tensors(GetParam()));
  for (const TensorInfo& t : file.tensors()) EXPECT_EQ(file.find(t.name), &t);
  EXPECT_EQ(file.find("no.such.tensor"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, PthFileReads,
    ::testing::Values("bf16.pth", "f16.pth", "f32.pth", "ints.pth", "odict.pth", "module.pth",
                      "params.pth", "shared.pth", "many.pth", "zip64.pth", "unaligned.pth",
                      "littleendian.pth"),
    [](const auto& info) {
      std::string name = info.param;
      return name.substr(0, name.find('.'));
    });

TEST(PthFile, KeepsTheStateDictOrder) {
  const PthFile file(pth_fixture_dir() / "odict.pth");
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.tensors()[0].name, "zeta");
  EXPECT_EQ(file.tensors()[1].name, "alpha");
  EXPECT_EQ(file.tensors()[2].name, "mid");
}

// Tied weights and slices are views of one storage: the reader hands out views of the same
// mapped bytes at the right element offsets, without copying.
TEST(PthFile, ViewsSharedStorageInPlace) {
  const PthFile file(pth_fixture_dir() / "shared.pth");
  const std::byte* base = file.find("embed")->data.data();
  const size_t row = 4 * 2;  // 4 bf16 values
  EXPECT_EQ(file.find("lm_head")->data.data(), base);
  EXPECT_EQ(file.find("rows_2_to_5")->data.data(), base + 2 * row);
  EXPECT_EQ(file.find("row_1")->data.data(), base + row);
  EXPECT_EQ(file.find("flat_5_to_9")->data.data(), base + 5 * 2);
  EXPECT_EQ(file.find("row_3_kept_2d")->shape, (std::vector<int64_t>{1, 4}));
  // torch aligns each storage record to 64 bytes; the view is the record inside the mapping.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % 64, 0u);
}

TEST(PthFile, RejectsWhatItCannotReadSafely) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"noncontig.pth", "size (4, 3) has stride (1, 4), not row-major contiguous"},
      {"nested.pth", "entry 'model' is a nested dict; only flat state dicts are supported"},
      {"nontensor.pth", "entry 'step' is an int, not a tensor"},
      {"float64.pth", "unsupported tensor storage type 'torch.DoubleStorage'"},
      {"list_root.pth", "the checkpoint holds a list, expected a state dict"},
      {"legacy.pth", "legacy (pre-1.6) torch.save format is not supported"},
      {"deflated.pth", "zip entry 'bf16/data.pkl' is compressed (method 8)"},
      {"missing_storage.pth",
       "tensor 'tok_embeddings.weight' needs storage record 'bf16/data/0', which the archive lacks"},
      {"short_storage.pth", "storage 'bf16/data/0' of 35 BF16 elements needs 70 bytes but its "
                            "record holds 68"},
      {"bigendian.pth", "byteorder is 'big'; only little-endian checkpoints are supported"},
      {"two_pickles.pth", "archive holds two pickles"},
      {"no_pickle.pth", "no <name>/data.pkl entry"},
      {"malicious.pth", "archive/data.pkl (byte 2): forbidden pickle global 'os.system'"},
  };
  for (const auto& c : cases) {  // not a structured binding: the macro's lambda captures it
    const char* file = c.first;
    SCOPED_TRACE(file);
    EXPECT_IO_ERROR(PthFile(pth_fixture_dir() / file), file, c.second);
  }
  EXPECT_IO_ERROR(PthFile(pth_fixture_dir() / "absent.pth"), "cannot open", "absent.pth");
}

// A cut file loses its zip directory; a pickle cut inside an intact zip must fail too.
TEST(PthFile, EveryTruncationIsAnError) {
  const std::string full = testing::read_text(pth_fixture_dir() / "bf16.pth");
  const testing::TempDir dir("io-pth-cut");
  const auto path = dir / "cut.pth";
  for (size_t n = 0; n < full.size(); ++n) {
    SCOPED_TRACE(n);
    testing::write_file(path, full.substr(0, n));
    EXPECT_IO_ERROR(PthFile(path), "cut.pth");
  }
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(full.data()),
                                         full.size());
  const ZipArchive zip(bytes, "bf16.pth");
  const std::string pickle = testing::as_string(zip.data(*zip.find("bf16/data.pkl")));
  for (size_t n = 0; n < pickle.size(); ++n) {
    SCOPED_TRACE(n);
    std::vector<testing::ZipItem> items;
    for (const ZipEntry& e : zip.entries()) {
      const std::string data = testing::as_string(zip.data(e));
      items.push_back({e.name, e.name == "bf16/data.pkl" ? data.substr(0, n) : data});
    }
    testing::write_file(path, testing::make_zip(items));
    EXPECT_IO_ERROR(PthFile(path), "cut.pth: bf16/data.pkl");
  }
}

// A hand-made archive around a hand-made pickle: the storage record checks of PthFile itself.
TEST(PthFile, ChecksStorageRecordsAgainstThePickle) {
  const testing::TempDir dir("io-pth-hand");
  const auto path = dir / "hand.pth";
  auto pickle = [](int64_t storage_numel, const std::string& key) {
    const std::string numel = "K" + std::string(1, static_cast<char>(storage_numel));
    return std::string("\x80\x02}X\x01\0\0\0w", 9) + "ctorch._utils\n_rebuild_tensor_v2\n((" +
           "X\x07\0\0\0storage"s + "ctorch\nHalfStorage\n" + "X\x01\0\0\0"s + key +
           "X\x03\0\0\0cpu"s + numel + "tQK\x01(K\x02t(K\x01t\x89Nt" + "Rs.";
  };
  testing::write_file(path, testing::make_zip({{"arch/data.pkl", pickle(3, "0")},
                                               {"arch/data/0", "aabbcc"},
                                               {"arch/version", "3\n"}}));
  const PthFile ok(path);
  ASSERT_EQ(ok.tensors().size(), 1u);
  EXPECT_EQ(testing::as_string(ok.find("w")->data), "bbcc");  // offset 1, two halves

  testing::write_file(path, testing::make_zip({{"arch/data.pkl", pickle(3, "1")},
                                               {"arch/data/0", "aabbcc"}}));
  EXPECT_IO_ERROR(PthFile(path), "needs storage record 'arch/data/1'");
  testing::write_file(path, testing::make_zip({{"arch/data.pkl", pickle(4, "0")},
                                               {"arch/data/0", "aabbcc"}}));
  EXPECT_IO_ERROR(PthFile(path), "storage 'arch/data/0' of 4 F16 elements needs 8 bytes");
  testing::write_file(path, testing::make_zip({{"data.pkl", pickle(3, "0")}}));
  EXPECT_IO_ERROR(PthFile(path), "no <name>/data.pkl entry");
}

}  // namespace
}  // namespace llama3::io
