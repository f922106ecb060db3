#include "model/precision.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"

namespace llama3::model {
namespace {

using kernels::WeightFormat;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(Precision, ModesAreTheOriginalDemosPresets) {
  const PrecisionMap perf = precision_mode("performance");
  EXPECT_EQ(perf.ff1_3.format, WeightFormat::Q4_0);
  for (const MatrixPrecision& p : {perf.wqkv, perf.wo, perf.ff2, perf.lm_head}) EXPECT_EQ(p.format, WeightFormat::Q8_0);
  const PrecisionMap acc = precision_mode("accuracy");
  for (const MatrixPrecision& p : {acc.wqkv, acc.wo, acc.ff1_3, acc.ff2, acc.lm_head}) {
    EXPECT_FALSE(p.native);
    EXPECT_EQ(p.format, WeightFormat::Q8_0);
  }
  const PrecisionMap bf16 = precision_mode("bf16");
  EXPECT_EQ(bf16.ff1_3.format, WeightFormat::BF16);
  EXPECT_TRUE(precision_mode("native").all_native());
  EXPECT_FALSE(perf.all_native());
  EXPECT_EQ(perf.kv_cache, kernels::KvDType::BF16);
}

TEST(Precision, CanonicalTextNamesEveryKeyInOrder) {
  EXPECT_EQ(precision_mode("performance").to_json(),
            R"({"wqkv":"q8","wo":"q8","ff1_3":"q4","ff2":"q8","lm_head":"q8","kv_cache":"bf16"})");
}

TEST(Precision, OverridesChangeOnlyTheKeysGiven) {
  const PrecisionMap p = make_precision("accuracy", R"({"ff1_3":"q4","lm_head":"bf16","kv_cache":"f32"})");
  EXPECT_EQ(p.ff1_3.format, WeightFormat::Q4_0);
  EXPECT_EQ(p.lm_head.format, WeightFormat::BF16);
  EXPECT_EQ(p.wqkv.format, WeightFormat::Q8_0);
  EXPECT_EQ(p.kv_cache, kernels::KvDType::F32);
  EXPECT_EQ(p.mode, "accuracy+custom");
  EXPECT_TRUE(make_precision("bf16", R"({"wo":"native"})").wo.native);
}

TEST(Precision, BadInputIsAClearError) {
  EXPECT_THAT([] { precision_mode("fast"); }, ThrowsMessage<Error>(HasSubstr("performance, accuracy, bf16, native")));
  EXPECT_THAT([] { make_precision("accuracy", "{"); }, ThrowsMessage<Error>(HasSubstr("not valid JSON")));
  EXPECT_THAT([] { make_precision("accuracy", "[1]"); }, ThrowsMessage<Error>(HasSubstr("JSON object")));
  EXPECT_THAT([] { make_precision("accuracy", R"({"ffn":"q4"})"); }, ThrowsMessage<Error>(HasSubstr("unknown key \"ffn\"")));
  EXPECT_THAT([] { make_precision("accuracy", R"({"wo":"q3"})"); }, ThrowsMessage<Error>(HasSubstr("\"q3\"")));
  EXPECT_THAT([] { make_precision("accuracy", R"({"wo":8})"); }, ThrowsMessage<Error>(HasSubstr("must be a string")));
  EXPECT_THAT([] { make_precision("accuracy", R"({"kv_cache":"q4"})"); }, ThrowsMessage<Error>(HasSubstr("kv_cache")));
}

}  // namespace
}  // namespace llama3::model
