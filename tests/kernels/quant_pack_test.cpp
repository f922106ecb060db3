#include "kernels/quant_pack.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "kernel_test_util.h"
#include "quant_test_util.h"

namespace llama3::kernels {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr WeightFormat kFormats[] = {WeightFormat::Q8_0, WeightFormat::Q4_0};

TEST(QuantPack, SizesFollowTheDocumentedLayout) {
  // Q8_0 2048 columns: 64 blocks x (16 x 2 bytes of scales + 512 bytes of quants) per 16 rows.
  EXPECT_EQ(packed_bytes(WeightFormat::Q8_0, 16, 2048), size_t{64 * 32 + 64 * 512});
  EXPECT_EQ(packed_bytes(WeightFormat::Q4_0, 16, 2048), size_t{64 * 32 + 64 * 256});
  // One block: 32 bytes of scales padded to 64; a partial last group is a whole group.
  EXPECT_EQ(packed_bytes(WeightFormat::Q8_0, 17, 32), size_t{2 * (64 + 512)});
  EXPECT_EQ(packed_bytes(WeightFormat::Q4_0, 1, 96), size_t{128 + 3 * 256});
  EXPECT_EQ(packed_bytes(WeightFormat::BF16, 3, 5), size_t{30});
  EXPECT_EQ(ggml_block_bytes(WeightFormat::Q8_0), 34u);
  EXPECT_EQ(ggml_block_bytes(WeightFormat::Q4_0), 18u);
}

TEST(QuantPack, Q8VectorsHoldFourConsecutiveKOfEachRowPlus128) {
  const int64_t rows = 16, cols = 64;
  auto ggml = testing::random_ggml(WeightFormat::Q8_0, rows, cols, 7);
  const auto p = testing::pack(WeightFormat::Q8_0, ggml, rows, cols);
  const auto* packed = reinterpret_cast<const uint8_t*>(p.bytes.data());
  const auto* in = reinterpret_cast<const uint8_t*>(ggml.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < 2; ++b) {
      const uint8_t* block = in + (r * 2 + b) * 34;
      EXPECT_EQ(packed[(b * 16 + r) * 2], block[0]);
      EXPECT_EQ(packed[(b * 16 + r) * 2 + 1], block[1]);
      for (int i = 0; i < 8; ++i) {
        for (int j = 0; j < 4; ++j) {
          EXPECT_EQ(packed[64 + b * 512 + i * 64 + r * 4 + j], static_cast<uint8_t>(block[2 + 4 * i + j] + 128));
        }
      }
    }
  }
}

TEST(QuantPack, Q4VectorsAreFourByteChunksOfQs) {
  const int64_t rows = 16, cols = 32;
  auto ggml = testing::random_ggml(WeightFormat::Q4_0, rows, cols, 8);
  const auto p = testing::pack(WeightFormat::Q4_0, ggml, rows, cols);
  const auto* packed = reinterpret_cast<const uint8_t*>(p.bytes.data());
  const auto* in = reinterpret_cast<const uint8_t*>(ggml.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) EXPECT_EQ(packed[64 + i * 64 + r * 4 + j], in[r * 18 + 2 + 4 * i + j]);
    }
  }
}

TEST(QuantPack, PaddedRowsHaveZeroScaleAndZeroValue) {
  for (WeightFormat f : kFormats) {
    const auto p = testing::pack(f, testing::random_ggml(f, 17, 64, 9), 17, 64);
    const auto* group = reinterpret_cast<const uint8_t*>(p.bytes.data()) + packed_group_bytes(f, 64);
    for (int64_t r = 1; r < 16; ++r) {
      for (int64_t b = 0; b < 2; ++b) {
        EXPECT_EQ(group[(b * 16 + r) * 2] | group[(b * 16 + r) * 2 + 1], 0);
        EXPECT_EQ(group[64 + b * packed_block_quant_bytes(f) + r * 4], f == WeightFormat::Q8_0 ? 0x80 : 0x88);
      }
    }
  }
}

TEST(QuantPack, UnpackIsTheLosslessInverseAndDequantizeMatchesGgml) {
  for (WeightFormat f : kFormats) {
    for (int64_t rows : {1, 15, 16, 33}) {
      for (int64_t cols : {32, 96, 2048}) {
        SCOPED_TRACE(::testing::Message() << weight_format_name(f) << " " << rows << "x" << cols);
        const auto ggml = testing::random_ggml(f, rows, cols, static_cast<uint32_t>(rows * cols));
        const auto p = testing::pack(f, ggml, rows, cols);
        const auto values = testing::dequantize_ggml(f, ggml, rows, cols);
        const size_t row_bytes = static_cast<size_t>(cols / 32) * ggml_block_bytes(f);
        std::vector<std::byte> row(row_bytes);
        std::vector<float> deq(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
          unpack_row_ggml(p.m, r, row);
          ASSERT_EQ(0, std::memcmp(row.data(), ggml.data() + r * row_bytes, row_bytes)) << "row " << r;
          dequantize_packed_row(p.m, r, deq);
          for (int64_t k = 0; k < cols; ++k) ASSERT_EQ(deq[k], values[r * cols + k]) << "row " << r << " k " << k;
        }
      }
    }
  }
}

TEST(QuantPack, DequantizesBf16Rows) {
  const auto w = testing::random_bf16(3 * 5, 10);
  const PackedMatrix m{WeightFormat::BF16, reinterpret_cast<const std::byte*>(w.data()), 3, 5};
  std::vector<float> row(5);
  dequantize_packed_row(m, 2, row);
  for (int k = 0; k < 5; ++k) EXPECT_EQ(row[k], bf16_to_f32(w[10 + k]));
}

TEST(QuantPack, BadShapesAndSpansAreErrors) {
  EXPECT_THAT([] { packed_bytes(WeightFormat::Q8_0, 4, 48); }, ThrowsMessage<Error>(HasSubstr("multiple of 32")));
  EXPECT_THAT([] { packed_bytes(WeightFormat::Q4_0, 0, 64); }, ThrowsMessage<Error>(HasSubstr("positive")));
  std::vector<std::byte> in(34 * 2), out(2 * (64 + 512));
  EXPECT_THAT([&] { pack_ggml_rows(WeightFormat::Q8_0, in, 1, 33, out); },
              ThrowsMessage<Error>(HasSubstr("multiple of 32")));
  EXPECT_THAT([&] { pack_ggml_rows(WeightFormat::Q8_0, in, 1, 96, out); },
              ThrowsMessage<Error>(HasSubstr("needs 102 bytes of blocks, got 68")));
  EXPECT_THAT([&] { pack_ggml_rows(WeightFormat::Q8_0, in, 1, 64, std::span(out).first(100)); },
              ThrowsMessage<Error>(HasSubstr("the output holds 100")));
  EXPECT_THAT([&] { pack_ggml_rows(WeightFormat::BF16, in, 1, 64, out); },
              ThrowsMessage<Error>(HasSubstr("BF16 weights are not in ggml blocks")));
  const auto p = testing::pack(WeightFormat::Q8_0, testing::random_ggml(WeightFormat::Q8_0, 3, 64, 1), 3, 64);
  std::vector<std::byte> row(68);
  std::vector<float> values(64);
  EXPECT_THAT([&] { unpack_row_ggml(p.m, 3, row); }, ThrowsMessage<Error>(HasSubstr("row 3 is outside a 3-row")));
  EXPECT_THAT([&] { unpack_row_ggml(p.m, 0, std::span(row).first(34)); },
              ThrowsMessage<Error>(HasSubstr("holds 34 elements, the row needs 68")));
  EXPECT_THAT([&] { dequantize_packed_row(p.m, -1, values); }, ThrowsMessage<Error>(HasSubstr("row -1")));
}

}  // namespace
}  // namespace llama3::kernels
