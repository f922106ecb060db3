// End-to-end on GGUF files: `llama3 generate` against the float64 reference (tests/reference/),
// on files written by the reference's own GGUF writer (gguf_file.py, ggml_blocks.py) the way
// llama.cpp's convert_hf_to_gguf.py writes them from the Hugging Face folder: q/k rows permuted
// back to Meta's order, llama.cpp's names and dims, rope_freqs.weight computed in float32 for
// Llama 3.1 scaling, llama.* metadata, matrices in BF16/F16/F32 or Q8_0/Q4_0 blocks. The writer
// shares no code with the engine, so a convention both got wrong the same way is unlikely, and
// the negative control (q/k rows left in HF's order) shows the tests would see it.
//
// The comparisons and tolerances are reference_compare.h's; the quantized files add two below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "model/checkpoint_loader.h"
#include "model/reference_compare.h"
#include "model/reference_models.h"

namespace llama3::testing {
namespace {

// ---------------------------------------------------------------------------------------------
// Tolerances of the quantized files.
// ---------------------------------------------------------------------------------------------

// --optimizations bf16 on a Q8_0/Q4_0 file: each matrix is dequantized and rounded to bf16, and
// the products take float32 activations. The reference rounds the same dequantized values to
// bf16 (@bf16w), so the two hold the same numbers and kLogitTol applies as for bf16 files:
// measured 5.6e-7 (Q8_0) and 5.9e-7 (Q4_0) relative on the 300-token prompt. A block read with
// the wrong scale, nibble order or offset moves logits by far more: Q4_0's own rounding of the
// weights moves them by ~0.3 relative (the Q4_0 file run against the bf16 weights' reference).
constexpr double kQuantizedAsBf16Tol = kLogitTol;

// The default for GGUF files (native): the blocks run as stored and every product's input is
// rounded to int8 blocks of 32 (d = max|x| / 127). That rounding is noise of up to half a step
// per element, and wherever float32 (engine) and float64 (reference) fall on two sides of a
// rounding boundary the next activations differ by a step, which attention then spreads to
// every later position. So the engine follows the exact dequantized reference only to within
// the rounding's own effect. Measured (relative, engine vs exact / engine vs the reference with
// the same int8 rounding, @actq8 / that reference vs the exact one):
//   Q8_0 GQA tied, 300 tokens     2.32e-2 / 1.84e-2 / 2.04e-2
//   Q4_0 MHA untied, 320 tokens   1.15e-2 / 1.16e-2 / 1.09e-2
//   Q4_0 GQA untied, 200 tokens   1.05e-2 / 1.08e-2 / 0.97e-2
// (the engine and the @actq8 reference agree to 1e-7 at position 0, before attention mixes
// positions). 6e-2 is ~2.5x the largest; a misread file is off by far more (the HF-order
// control: 1.05). With this tolerance most positions are near ties, so top-1 goes mostly
// unchecked here: the exactness of the blocks is kQuantizedAsBf16Tol's test.
constexpr double kQuantizedNativeTol = 6e-2;

const std::string kNative = kF32Kv + " --optimizations native";

// ---------------------------------------------------------------------------------------------
// BF16/F16/F32 files against the reference.
// ---------------------------------------------------------------------------------------------

TEST(ReferenceGqaTiedScaled8, GgufMatchesReference) { check_folder(gqa_tied_s8(), "gguf", "gqa_tied_s8"); }
TEST(ReferenceGqaTiedScaled32, GgufMatchesReference) { check_folder(gqa_tied_s32(), "gguf", "gqa_tied_s32"); }
TEST(ReferenceMhaUntiedLlama30, GgufMatchesReference) {
  check_folder(mha_untied_llama30(), "gguf", "mha_untied_llama30");
}
TEST(ReferenceGqaUntiedScaled32, GgufMatchesReference) {
  check_folder(gqa_untied_s32(), "gguf", "gqa_untied_s32");
}

TEST(ReferenceGqaTiedScaled8, GgufF16AndF32EqualBf16) {
  const EngineRun bf16 = run_all(gqa_tied_s8(), "gguf", 2);
  expect_same(bf16, run_all(gqa_tied_s8(), "gguf16", 2), "gguf f16 vs bf16");
  expect_same(bf16, run_all(gqa_tied_s8(), "gguf32", 2), "gguf f32 vs bf16");
}

// ---------------------------------------------------------------------------------------------
// A GGUF and the Hugging Face folder it was made from compute the same numbers.
// ---------------------------------------------------------------------------------------------

// The long prompts reach the positions where the scaled RoPE frequencies matter.
TEST(ReferenceGqaTiedScaled8, GgufAndHfGiveTheSameResult) {
  for (size_t p : {2, 3}) expect_same_folders(gqa_tied_s8(), "gqa_tied_s8", "hf", "gguf", p);
}
TEST(ReferenceGqaTiedScaled32, GgufAndHfGiveTheSameResult) {
  expect_same_folders(gqa_tied_s32(), "gqa_tied_s32", "hf", "gguf", 1);
}
TEST(ReferenceMhaUntiedLlama30, GgufAndHfGiveTheSameResult) {
  expect_same_folders(mha_untied_llama30(), "mha_untied_llama30", "hf", "gguf", 2);
}
TEST(ReferenceGqaUntiedScaled32, GgufAndHfGiveTheSameResult) {
  expect_same_folders(gqa_untied_s32(), "gqa_untied_s32", "hf", "gguf", 1);
}

// rope_freqs.weight (per-frequency divisors, float32 as the converter computes them) is
// recognised as Llama 3.1 scaling with the factor config.json states, so the GGUF runs the very
// frequencies of the HF folder, not float32 approximations of them; the other fields agree too.
// The logits cannot tell: run with the raw float32 divisors instead (identification disabled),
// the long prompts move by only 7.8e-7 relative, under kSameWeightsTol (measured; identified,
// the GGUF and HF runs are bitwise equal). So this test is what catches a failed identification.
TEST(ReferenceGguf, ConfigEqualsHfIncludingRopeScalingFromRopeFreqs) {
  struct Case {
    const ReferenceModel& m;
    const char* name;
    double factor;  // 0: Llama 3.0, no scaling
  };
  for (const Case& k : {Case{gqa_tied_s8(), "gqa_tied_s8", 8}, Case{gqa_tied_s32(), "gqa_tied_s32", 32},
                        Case{mha_untied_llama30(), "mha_untied_llama30", 0},
                        Case{gqa_untied_s32(), "gqa_untied_s32", 32}}) {
    SCOPED_TRACE(k.name);
    const model::ModelConfig hf = model::checkpoint_config(k.m.folder("hf"));
    const model::ModelConfig gguf = model::checkpoint_config(k.m.folder("gguf"));
    EXPECT_EQ(gguf.rope_scaling.enabled, k.factor > 0);
    if (k.factor > 0) {
      EXPECT_EQ(gguf.rope_scaling.factor, k.factor);
    }
    expect_gguf_config_equals_hf(gguf, hf);
  }
}

// The GGUF whose q/k rows were left in Hugging Face's order must NOT match: the engine takes a
// GGUF's rows as they are (Meta's order), so a converter that skipped the permutation, or a
// reader that applied HF's, would be caught here.
TEST(ReferenceGqaTiedScaled8, NegativeControlHfOrderGgufDoesNotMatch) {
  const ReferenceModel& m = gqa_tied_s8();
  const ReferencePrompt& ref = m.prompts[2];
  const EngineRun run = run_all(m, "gguf_hf_order", 2);
  double worst = 0;
  size_t top1_differs = 0;
  for (size_t p = 0; p < ref.tokens.size(); ++p) {
    worst = std::max(worst, max_abs_error(run.logits[p], ref.logits[p]));
    top1_differs += argmax(run.logits[p]) != ref.top1[p];
  }
  std::printf("[ reference ] GGUF with HF q/k order: max err %.3g (%.3g relative), top-1 differs at %zu of %zu\n",
              worst, worst / scale_of(ref), top1_differs, ref.tokens.size());
  EXPECT_GT(worst, kQuantizedNativeTol * scale_of(ref));
  EXPECT_GT(top1_differs, ref.tokens.size() / 10);
}

// ---------------------------------------------------------------------------------------------
// Q8_0 and Q4_0 files.
// ---------------------------------------------------------------------------------------------

void check_quantized(const ReferenceModel& m, const std::string& name) {
  for (size_t i = 0; i < m.prompts.size(); ++i) {
    const ReferencePrompt& ref = m.prompts[i];
    const std::string what = name + " prompt of " + std::to_string(ref.tokens.size());
    const int steps = static_cast<int>(ref.greedy.size());
    ASSERT_TRUE(ref.bf16_weights) << what << ": made without @bf16w";
    expect_agrees(run_engine(m.folder("gguf"), ref.tokens, steps, true, kF32Kv + " --optimizations bf16"),
                  *ref.bf16_weights, kQuantizedAsBf16Tol, what + ", as bf16");
    const EngineRun native = run_engine(m.folder("gguf"), ref.tokens, steps, true, kNative);
    // Near ties are the rule at this tolerance (see above): no limit on their share.
    expect_agrees(native, ref, kQuantizedNativeTol, what + ", native", 1.0);
    if (ref.act_q8) {
      expect_agrees(native, *ref.act_q8, kQuantizedNativeTol, what + ", native vs int8-activation reference", 1.0);
      double moved = 0;
      for (size_t p = 0; p < ref.logits.size(); ++p) {
        for (size_t v = 0; v < ref.logits[p].size(); ++v) {
          moved = std::max(moved, std::abs(ref.act_q8->logits[p][v] - ref.logits[p][v]));
        }
      }
      std::printf("[ reference ] %s: int8 activations move the reference itself by %.3g relative\n", what.c_str(),
                  moved / scale_of(ref));
      // The engine's distance is the size of that rounding, not of a misread weight.
      EXPECT_LE(moved / scale_of(ref), kQuantizedNativeTol);
    }
  }
}

TEST(ReferenceQuantizedGguf, GqaTiedScaled8Q8_0) { check_quantized(gqa_tied_s8_q8_0(), "gqa_tied_s8 q8_0"); }
TEST(ReferenceQuantizedGguf, MhaUntiedLlama30Q4_0) {
  check_quantized(mha_untied_llama30_q4_0(), "mha_untied_llama30 q4_0");
}
TEST(ReferenceQuantizedGguf, GqaUntiedScaled32Q4_0) {
  check_quantized(gqa_untied_s32_q4_0(), "gqa_untied_s32 q4_0");
}

}  // namespace
}  // namespace llama3::testing
