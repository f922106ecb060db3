#include "io/zip_archive.h"

#include <gtest/gtest.h>

#include "core/mapped_file.h"
#include "io/pth_file.h"
#include "io_test_helpers.h"

namespace llama3::io {
namespace {

using testing::le16;
using testing::le32;
using testing::le64;
using testing::make_zip;
using testing::ZipItem;

std::span<const std::byte> span_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

TEST(ZipArchive, GivesEachStoredEntryAsAViewIntoTheFile) {
  const std::string zip = make_zip({{"a/data.pkl", "pickle!"}, {"a/data/0", "0123456789"}, {"e", ""}});
  const ZipArchive archive(span_of(zip), "t.zip");
  ASSERT_EQ(archive.entries().size(), 3u);
  EXPECT_EQ(archive.entries()[0].name, "a/data.pkl");
  const ZipEntry* e = archive.find("a/data/0");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->size, 10u);
  EXPECT_EQ(zip.substr(e->offset, e->size), "0123456789");
  // The view points into the caller's bytes: nothing is copied.
  EXPECT_EQ(reinterpret_cast<const char*>(archive.data(*e).data()), zip.data() + e->offset);
  EXPECT_EQ(archive.find("e")->size, 0u);
  EXPECT_EQ(archive.find("a/data/1"), nullptr);
}

TEST(ZipArchive, SkipsAnArchiveComment) {
  std::string zip = make_zip({{"x", "payload"}});
  zip[zip.size() - 2] = 5;  // comment length
  zip += "hello";
  const ZipArchive archive(span_of(zip), "t.zip");
  EXPECT_EQ(testing::as_string(archive.data(*archive.find("x"))), "payload");
}

// Both archives come from tests/io/write_pth_fixtures.py: torch.save's own (miniz, which already
// writes a ZIP64 end record) and a hand-written one where every size and offset lives only in
// ZIP64 extra fields.
TEST(ZipArchive, ReadsZip64ExtraFieldsLikeThePlainArchive) {
  const MappedFile plain(testing::pth_fixture_dir() / "bf16.pth");
  const MappedFile zip64(testing::pth_fixture_dir() / "zip64.pth");
  const ZipArchive a(plain.bytes(), "bf16.pth");
  const ZipArchive b(zip64.bytes(), "zip64.pth");
  ASSERT_EQ(a.entries().size(), b.entries().size());
  for (size_t i = 0; i < a.entries().size(); ++i) {
    SCOPED_TRACE(a.entries()[i].name);
    EXPECT_EQ(a.entries()[i].name, b.entries()[i].name);
    EXPECT_EQ(testing::as_string(a.data(a.entries()[i])), testing::as_string(b.data(b.entries()[i])));
    EXPECT_EQ(b.entries()[i].offset % 64, 0u);  // the writer aligns data like torch does
  }
}

// Real 70B shards are over 4 GiB. A sparse file with a 4.5 GiB hole before the first entry puts
// every offset past 32 bits without using the disk.
TEST(ZipArchive, ReadsEntriesBeyondFourGibibytes) {
  const testing::TempDir dir("io-zip64");
  const auto big = dir / "big.pth";
  const uint64_t gap = (uint64_t{9} << 29);  // 4.5 GiB
  const auto result = testing::run_command(fmt::format(
      "'{}' '{}/tests/io/write_pth_fixtures.py' --sparse-zip64 '{}' '{}' {}", LLAMA3_PYTHON,
      LLAMA3_SOURCE_DIR, (testing::pth_fixture_dir() / "bf16.pth").string(), big.string(), gap));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const MappedFile file(big);
  ASSERT_GT(file.size(), gap);
  const ZipArchive archive(file.bytes(), "big.pth");
  for (const ZipEntry& e : archive.entries()) EXPECT_GE(e.offset, gap) << e.name;
  const PthFile pth(big);
  testing::expect_same_tensors(pth.tensors(), testing::expected_tensors("bf16.pth"));
}

TEST(ZipArchive, RejectsBrokenArchives) {
  const std::string good = make_zip({{"a", "AAAA"}, {"b", "BBBBBB"}});
  const size_t cd = good.find(le32(0x02014b50));
  const size_t end = good.size() - 22;
  auto patched = [&](size_t pos, const std::string& bytes) {
    std::string z = good;
    z.replace(pos, bytes.size(), bytes);
    return z;
  };
  struct Case {
    const char* label;
    std::string bytes;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"empty", "", "not a zip archive"},
      {"text", std::string(200, 'x'), "not a zip archive"},
      {"cd past end", patched(end + 16, le32(1u << 30)), "central directory"},
      {"cd size past end", patched(end + 12, le32(1u << 30)), "past the end of the file"},
      {"too many entries", patched(end + 10, le16(500)), "claims 500 entries"},
      {"bad cd signature", patched(cd, "XXXX"), "entry 0 has a bad signature"},
      {"local offset past end", patched(cd + 42, le32(1u << 30)), "zip entry 'a' local header"},
      {"bad local signature", patched(0, "XXXX"), "bad local header signature"},
      {"size past end", patched(cd + 20, le32(1u << 30) + le32(1u << 30)), "past the end"},
      {"sizes differ", patched(cd + 20, le32(3)), "compressed size 3 != size 4"},
      {"local name differs", patched(30, "z"), "local header names another entry"},
      {"multi-disk", patched(end + 4, le16(1)), "multi-disk"},
      {"compressed", make_zip({{"a", "AAAA", 8}}), "zip entry 'a' is compressed (method 8)"},
      {"encrypted", make_zip({{"a", "AAAA", 0, 1}}), "zip entry 'a' is encrypted"},
      {"duplicate", make_zip({{"a", "1"}, {"a", "2"}}), "zip entry 'a' appears twice"},
      {"name past cd", patched(cd + 28, le16(4000)), "truncated"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    EXPECT_IO_ERROR(ZipArchive(span_of(c.bytes), "t.zip"), "t.zip", c.needle);
  }
}

TEST(ZipArchive, RejectsBrokenZip64Records) {
  const MappedFile file(testing::pth_fixture_dir() / "zip64.pth");
  const std::string good = testing::as_string(file.bytes());
  const size_t locator = good.size() - 22 - 20;
  std::string bad_pointer = good;
  bad_pointer.replace(locator + 8, 8, le64(uint64_t{1} << 40));
  EXPECT_IO_ERROR(ZipArchive(span_of(bad_pointer), "z.pth"), "z.pth", "zip64 end record");
  std::string bad_signature = good;
  const size_t record = good.rfind(le32(0x06064b50));
  bad_signature.replace(record, 4, "XXXX");
  EXPECT_IO_ERROR(ZipArchive(span_of(bad_signature), "z.pth"), "bad signature");
  std::string huge_cd = good;
  huge_cd.replace(record + 48, 8, le64(~uint64_t{0} - 4));  // offset + size wraps around
  EXPECT_IO_ERROR(ZipArchive(span_of(huge_cd), "z.pth"), "central directory");
}

TEST(ZipArchive, EveryTruncationIsAnError) {
  const std::string good = make_zip({{"a", "AAAA"}, {"bb", "BBBBBB"}});
  for (size_t n = 0; n < good.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string cut = good.substr(0, n);
    EXPECT_IO_ERROR(ZipArchive(span_of(cut), "t.zip"), "t.zip");
  }
}

// Any single corrupted byte of an archive (plain or ZIP64) gives either a llama3::Error or
// entries that lie inside the buffer.
TEST(ZipArchive, CorruptedBytesNeverEscapeTheBuffer) {
  const MappedFile file(testing::pth_fixture_dir() / "zip64.pth");
  const std::string zip64 = testing::as_string(file.bytes());
  const std::string plain = make_zip({{"a", "AAAA"}, {"bb", "BBBBBB"}});
  for (const std::string* good : {&plain, &zip64}) {
    // The ZIP64 fixture is mostly tensor bytes: fuzz its directory and end records.
    const size_t from = good->size() > 1000 ? good->rfind(le32(0x02014b50)) - 200 : 0;
    for (size_t pos = from; pos < good->size(); ++pos) {
      for (const int value : {0x00, 0x01, 0x7f, 0xff}) {
        std::string z = *good;
        z[pos] = static_cast<char>(value);
        try {
          const ZipArchive archive(span_of(z), "t.zip");
          for (const ZipEntry& e : archive.entries()) {
            EXPECT_LE(e.offset + e.size, z.size());
          }
        } catch (const llama3::Error&) {
        }
      }
    }
  }
}

}  // namespace
}  // namespace llama3::io
