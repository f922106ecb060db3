// An independent check of core/quant_blocks against ggml itself: the prebuilt libggml-base.so of
// the peer install is loaded at run time and its reference quantizers, dequantizers and fp16
// conversions are compared bit for bit with ours. Skipped (and saying so) where it is not installed.
#include <dlfcn.h>
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/quant_blocks.h"
#include "random_rows.h"

namespace llama3 {
namespace {

using testing::dequantizable_types;
using testing::gaussian;
using testing::random_row;
using testing::Scales;

constexpr const char* kPeerBins = "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so";

// ggml's C signatures; block pointers are passed as void* (same ABI).
using DequantizeFn = void(const void* blocks, float* out, int64_t k);
using QuantizeFn = void(const float* in, void* blocks, int64_t k);
using HalfFromFloatFn = uint16_t(float);
struct GgmlBf16 {
  uint16_t bits;
};
using Bf16FromFloatFn = GgmlBf16(float);

struct DlCloser {
  void operator()(void* handle) const { dlclose(handle); }
};

class Ggml {
 public:
  // The library, or nullptr with `why` saying where it was looked for. LLAMA3_GGML_LIB, when set,
  // must load: a path given on purpose that does not work is a failure, not a skip.
  static const Ggml* get(std::string& why) {
    static std::string reason;
    static const std::unique_ptr<Ggml> ggml = load(reason);
    why = reason;
    return ggml.get();
  }

  template <typename Fn>
  Fn* symbol(const std::string& name) const {
    return reinterpret_cast<Fn*>(dlsym(handle_.get(), name.c_str()));
  }
  const std::string& path() const { return path_; }

 private:
  Ggml(std::unique_ptr<void, DlCloser> handle, std::string path)
      : handle_(std::move(handle)), path_(std::move(path)) {}

  static std::unique_ptr<Ggml> load(std::string& why) {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("LLAMA3_GGML_LIB"); env && *env) {
      std::unique_ptr<void, DlCloser> handle(dlopen(env, RTLD_NOW | RTLD_LOCAL));
      if (!handle) {
        const char* error = dlerror();
        ADD_FAILURE() << "LLAMA3_GGML_LIB=" << env << " does not load: " << (error ? error : "?");
        why = "LLAMA3_GGML_LIB does not load";
        return nullptr;
      }
      return std::unique_ptr<Ggml>(new Ggml(std::move(handle), env));
    }
    for (const std::string& path : {fmt::format("{}/.cache/peer/{}", LLAMA3_SOURCE_DIR, kPeerBins),
                                    fmt::format("/tmp/nlc/{}", kPeerBins)}) {
      if (!std::filesystem::exists(path)) continue;
      std::unique_ptr<void, DlCloser> handle(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
      if (handle) return std::unique_ptr<Ggml>(new Ggml(std::move(handle), path));
    }
    why = "peer library not installed; run make peer-bench's install (looked for LLAMA3_GGML_LIB, " +
          std::string(LLAMA3_SOURCE_DIR) + "/.cache/peer/" + kPeerBins + ", /tmp/nlc/" + kPeerBins + ")";
    return nullptr;
  }

  std::unique_ptr<void, DlCloser> handle_;
  std::string path_;
};

class QuantBlocksVsGgml : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ggml = Ggml::get(why);
    if (!ggml) GTEST_SKIP() << why;
  }
  const Ggml* ggml = nullptr;
};

// ggml's function-name spelling of a type: "q4_0", "q4_K".
std::string c_name(std::string_view name) {
  std::string s(name);
  s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// Rows of `type` the way ggml dequantizes them (F32 is a copy; ggml has no row function for it).
std::vector<float> ggml_dequantize(const Ggml& ggml, GgmlType type, std::span<const std::byte> row, size_t n) {
  std::vector<float> out(n);
  std::string name = "dequantize_row_" + c_name(ggml_type_name(type));
  if (type == GgmlType::F32) {
    std::memcpy(out.data(), row.data(), row.size());
    return out;
  }
  if (type == GgmlType::F16) name = "ggml_fp16_to_fp32_row";
  if (type == GgmlType::BF16) name = "ggml_bf16_to_fp32_row";
  auto* fn = ggml.symbol<DequantizeFn>(name);
  EXPECT_NE(fn, nullptr) << name << " is not exported by " << ggml.path();
  if (fn) fn(row.data(), out.data(), static_cast<int64_t>(n));
  return out;
}

std::vector<float> ours(GgmlType type, std::span<const std::byte> row, size_t n) {
  std::vector<float> out(n);
  dequantize_row(type, row, out);
  return out;
}

// The first element whose bits differ, or -1.
ptrdiff_t first_difference(std::span<const float> a, std::span<const float> b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return static_cast<ptrdiff_t>(i);
  }
  return -1;
}

void expect_same_dequantization(const Ggml& ggml, GgmlType type, std::span<const std::byte> row, size_t n,
                                const std::string& what) {
  const auto want = ggml_dequantize(ggml, type, row, n);
  const auto got = ours(type, row, n);
  const ptrdiff_t i = first_difference(got, want);
  const size_t at = static_cast<size_t>(std::max<ptrdiff_t>(i, 0));
  EXPECT_EQ(i, -1) << ggml_type_name(type) << " (" << what << "): element " << i << " is " << got[at]
                   << ", ggml gives " << want[at];
}

// Gaussian data quantized into `type` by ggml's reference quantizer (ours for F16/BF16/F32).
std::vector<std::byte> quantized_by_ggml(const Ggml& ggml, GgmlType type, std::span<const float> x) {
  const GgmlTypeTraits t = ggml_traits(type);
  const size_t blocks = x.size() / static_cast<size_t>(t.block_elements);
  std::vector<std::byte> row(blocks * static_cast<size_t>(t.block_bytes));
  if (type == GgmlType::F32) {
    std::memcpy(row.data(), x.data(), row.size());
  } else if (type == GgmlType::F16 || type == GgmlType::BF16) {
    for (size_t i = 0; i < x.size(); ++i) {
      const uint16_t h = type == GgmlType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
      std::memcpy(row.data() + 2 * i, &h, 2);
    }
  } else {
    const std::string name = "quantize_row_" + c_name(t.name) + "_ref";
    auto* fn = ggml.symbol<QuantizeFn>(name);
    EXPECT_NE(fn, nullptr) << name << " is not exported by " << ggml.path();
    if (fn) fn(x.data(), row.data(), static_cast<int64_t>(x.size()));
  }
  return row;
}

TEST_F(QuantBlocksVsGgml, DequantizersMatchOnRandomBlocks) {
  std::mt19937 rng(11);
  for (GgmlType type : dequantizable_types()) {
    for (Scales scales : {Scales::kModerate, Scales::kAnyFinite}) {
      const auto row = random_row(type, 4096, rng, scales);
      expect_same_dequantization(*ggml, type, row, 4096, scales == Scales::kModerate ? "moderate" : "any finite");
    }
  }
}

TEST_F(QuantBlocksVsGgml, DequantizersMatchOnGgmlQuantizedData) {
  std::mt19937 rng(12);
  const auto x = gaussian(4096, rng);
  for (GgmlType type : dequantizable_types()) {
    expect_same_dequantization(*ggml, type, quantized_by_ggml(*ggml, type, x), x.size(), "ggml-quantized");
  }
}

// Inputs that exercise the corners of ggml's reference quantizers: ties, equal magnitudes of
// both signs, zero blocks, tiny blocks (1/d overflows), huge blocks (d overflows fp16), inf, NaN.
std::vector<float> quantizer_inputs(std::mt19937& rng) {
  std::vector<float> x = gaussian(64 * kBlockElements, rng);
  auto block = [&](size_t b) { return std::span(x).subspan(b * kBlockElements, kBlockElements); };
  for (size_t j = 0; j < kBlockElements; ++j) {
    block(1)[j] = 0.0f;
    block(2)[j] = (static_cast<float>(j) - 15.5f) / 4;            // q8: x / d hits .5 ties
    block(3)[j] = j % 2 ? 3.0f : -3.0f;                          // equal magnitudes, both signs
    block(4)[j] = std::ldexp(block(4)[j], -130);                 // float subnormals
    block(5)[j] = std::ldexp(block(5)[j], 100);                  // d overflows fp16
    block(6)[j] = std::ldexp(block(6)[j], -20);                  // d is an fp16 subnormal
    block(7)[j] = static_cast<float>(static_cast<int>(j) - 16);  // q4: ties at x / d + 8.5
  }
  block(8)[3] = INFINITY;
  block(9)[7] = -INFINITY;
  block(10)[0] = NAN;
  block(11)[31] = NAN;
  block(12)[5] = NAN;
  block(12)[6] = INFINITY;
  return x;
}

TEST_F(QuantBlocksVsGgml, QuantizersMatch) {
  std::mt19937 rng(13);
  const auto x = quantizer_inputs(rng);
  const size_t blocks = x.size() / kBlockElements;
  auto* q8_ref = ggml->symbol<QuantizeFn>("quantize_row_q8_0_ref");
  auto* q4_ref = ggml->symbol<QuantizeFn>("quantize_row_q4_0_ref");
  ASSERT_NE(q8_ref, nullptr);
  ASSERT_NE(q4_ref, nullptr);

  std::vector<BlockQ8_0> q8(blocks), q8_want(blocks);
  quantize_row_q8_0(x, q8);
  q8_ref(x.data(), q8_want.data(), static_cast<int64_t>(x.size()));
  std::vector<BlockQ4_0> q4(blocks), q4_want(blocks);
  quantize_row_q4_0(x, q4);
  q4_ref(x.data(), q4_want.data(), static_cast<int64_t>(x.size()));
  for (size_t b = 0; b < blocks; ++b) {
    EXPECT_EQ(std::memcmp(&q8[b], &q8_want[b], sizeof(BlockQ8_0)), 0) << "Q8_0 block " << b;
    EXPECT_EQ(std::memcmp(&q4[b], &q4_want[b], sizeof(BlockQ4_0)), 0) << "Q4_0 block " << b;
  }
}

// Our fp16/bf16 rounding against ggml's GGML_FP32_TO_FP16 / GGML_FP32_TO_BF16: every float
// halfway between two adjacent halves (where rounding decides), one ulp either side, and a
// stride through all float bit patterns.
TEST_F(QuantBlocksVsGgml, HalfConversionsMatch) {
  auto* to_half = ggml->symbol<HalfFromFloatFn>("ggml_fp32_to_fp16");
  auto* to_bf16 = ggml->symbol<Bf16FromFloatFn>("ggml_fp32_to_bf16");
  ASSERT_NE(to_half, nullptr);
  ASSERT_NE(to_bf16, nullptr);
  std::vector<float> probes;
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const float mid = (f16_to_f32(static_cast<uint16_t>(h)) + f16_to_f32(static_cast<uint16_t>(h + 1))) / 2;
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      probes.push_back(f);
      probes.push_back(-f);
    }
  }
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4099) {
    probes.push_back(std::bit_cast<float>(static_cast<uint32_t>(bits)));
  }
  size_t half_mismatches = 0, bf16_mismatches = 0;
  for (float f : probes) {
    if (f32_to_f16(f) != to_half(f) && half_mismatches++ < 5) {
      ADD_FAILURE() << "fp16 of " << f << " (0x" << std::hex << std::bit_cast<uint32_t>(f) << "): ours 0x"
                    << f32_to_f16(f) << ", ggml 0x" << to_half(f);
    }
    if (f32_to_bf16(f) != to_bf16(f).bits && bf16_mismatches++ < 5) {
      ADD_FAILURE() << "bf16 of 0x" << std::hex << std::bit_cast<uint32_t>(f) << ": ours 0x" << f32_to_bf16(f)
                    << ", ggml 0x" << to_bf16(f).bits;
    }
  }
  EXPECT_EQ(half_mismatches, 0u);
  EXPECT_EQ(bf16_mismatches, 0u);
}

// Every half and every bf16 bit pattern to float, NaNs and infinities included.
TEST_F(QuantBlocksVsGgml, AllHalvesWidenAlike) {
  std::vector<uint16_t> all(0x10000);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  const auto bytes = std::as_bytes(std::span(all));
  expect_same_dequantization(*ggml, GgmlType::F16, bytes, all.size(), "all halves");
  expect_same_dequantization(*ggml, GgmlType::BF16, bytes, all.size(), "all bf16");
}

// The cost of the lossy conversions, on N(0, 1) data first quantized into each type by ggml:
// relative RMS of dequant(Q8_0) - dequant(source) over dequant(source), printed for the record.
// Q8_0 steps are amax / 127 per 32 values, about 2.5 / 127 / sqrt(12) ~ 0.6% of sigma for
// Gaussian data; 1% bounds every type (exact ones must be 0).
TEST_F(QuantBlocksVsGgml, Q8_0ConversionErrorOnRealisticData) {
  std::mt19937 rng(14);
  const size_t n = 256 * 256;
  const auto x = gaussian(n, rng);
  for (GgmlType type : dequantizable_types()) {
    const auto row = quantized_by_ggml(*ggml, type, x);
    const auto source = ours(type, row, n);
    std::vector<BlockQ8_0> q8(n / kBlockElements);
    convert_row_to_q8_0(type, row, q8);
    const auto converted = ours(GgmlType::Q8_0, std::as_bytes(std::span(q8)), n);
    double err = 0, norm = 0;
    for (size_t i = 0; i < n; ++i) {
      err += (static_cast<double>(converted[i]) - source[i]) * (static_cast<double>(converted[i]) - source[i]);
      norm += static_cast<double>(source[i]) * source[i];
    }
    const double rel = std::sqrt(err / norm);
    std::printf("  %-5s -> Q8_0: relative RMS error %.3e%s\n", std::string(ggml_type_name(type)).c_str(), rel,
                converts_exactly_to_q8_0(type) ? " (exact)" : "");
    ::testing::Test::RecordProperty("rel_rms_" + std::string(ggml_type_name(type)), std::to_string(rel));
    if (converts_exactly_to_q8_0(type)) {
      EXPECT_EQ(rel, 0.0) << ggml_type_name(type);
    } else {
      EXPECT_LT(rel, 0.01) << ggml_type_name(type);
    }
  }
}

}  // namespace
}  // namespace llama3
