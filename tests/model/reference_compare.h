#pragma once
// Tolerances and comparisons of the end-to-end reference tests: a `llama3 generate` run against
// the float64 reference's answers (reference_fixture.h), or two runs against each other.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "model/model_config.h"
#include "model/reference_fixture.h"

namespace llama3::testing {

// ---------------------------------------------------------------------------------------------
// Tolerances.
// ---------------------------------------------------------------------------------------------

// Max |engine logit - reference logit|, relative to scale_of(prompt) = max(1, max |reference
// logit|) over the prompt.
// The engine runs in float32 from the same bf16 weights (KV cache in f32 here), so what is left
// is float32 rounding (2^-24 ~ 6e-8 relative) accumulated over dot products of up to 8192
// terms, the residual stream, RMSNorm, softmax over up to 1052 keys and float32 cos/sin tables.
// Measured (this machine, AVX-512 kernels): at most 1.07e-6 relative over every model, prompt
// and position here (the 1052-token prompt; 1B dims 7.5e-7; 300 tokens 8.2e-7). 1e-5 is ~10x
// that, for other summation orders (AVX2/scalar kernels, other thread splits), and ~1000x below
// what a real bug does: the un-permuted HF control is off by 4.65 absolute (~1.4 relative),
// RoPE factor 32 instead of 8 by 2e-2..4e-2 (long prompt), theta 250000 read as 500000 by 0.12, and norm_eps
// 1e-3 read as 1e-5 by ~1e-3 relative.
inline constexpr double kLogitTol = 1e-5;

// With the default bf16 KV cache, keys (after RoPE) and values are rounded to 8 significant bits
// before attention. Against the exact reference that moves logits by 4.5e-3 relative (measured on
// the 300-token prompt; the reference itself, rounding K and V the same way, moves by 4.48e-3):
// bound 1.5e-2. Near ties (lead < 2 * tolerance) are then common, so up to 60% of the positions
// may go unchecked for top-1 in that comparison.
inline constexpr double kBf16KvLogitTol = 1.5e-2;
// Against the reference that rounds K and V to bf16 too, only elements whose float32 value falls
// on the other side of a bf16 rounding boundary than the float64 one differ (by one bf16 step).
// Measured 3.4e-5 relative (300-token prompt, vs 4.5e-3 against the exact reference, so the
// engine's bf16 cache is exactly round-to-nearest of post-RoPE keys and values); bound 2e-4.
inline constexpr double kBf16KvRoundedTol = 2e-4;

// Meta vs HF (and shards, dtypes) of identical weights: the engine should compute the same
// numbers; 1e-5 relative allows only a different reduction order, nothing else.
inline constexpr double kSameWeightsTol = 1e-5;

// Exact float32 attention state for the tight comparisons.
inline const std::string kF32Kv = "--kv_cache f32";

// ---------------------------------------------------------------------------------------------
// Comparisons.
// ---------------------------------------------------------------------------------------------

// max(1, max |reference logit|) over the prompt's stored logits: tolerances are relative to it.
inline double scale_of(const ReferencePrompt& ref) {
  double scale = std::max(1.0, max_abs(ref.last_logits));
  for (const auto& row : ref.logits) scale = std::max(scale, max_abs(row));
  return scale;
}

struct Agreement {
  double max_err = 0;       // over the compared logits
  double max_rel = 0;       // max_err / scale
  size_t top1_checked = 0;  // positions with a decisive reference top-1
  size_t top1_skipped = 0;  // near ties
  size_t greedy_checked = 0;
};

// Greedy steps whose choice is decided: all steps before the first near tie (margin <= limit).
inline size_t decided_greedy_steps(const ReferencePrompt& ref, double limit) {
  size_t n = 0;
  while (n < ref.greedy.size() && ref.greedy_margins[n] > limit) ++n;
  return n;
}

// Compares a run with the reference on one prompt; `tol` is relative to scale_of(ref).
// At most max_near_ties of the positions may be too close to call.
inline Agreement expect_agrees(const EngineRun& run, const ReferencePrompt& ref, double tol,
                        const std::string& what, double max_near_ties = 0.05) {
  SCOPED_TRACE(what);
  Agreement a;
  const double scale = scale_of(ref);
  const double abs_tol = tol * scale;
  EXPECT_EQ(run.prompt, ref.tokens);
  if (run.logits.size() == ref.tokens.size() && run.logits.size() > 1) {  // every position
    for (size_t p = 0; p < ref.tokens.size(); ++p) {
      if (!ref.logits.empty()) a.max_err = std::max(a.max_err, max_abs_error(run.logits[p], ref.logits[p]));
      if (ref.margins[p] > 2 * abs_tol) {
        ++a.top1_checked;
        EXPECT_EQ(argmax(run.logits[p]), ref.top1[p]) << "top-1 at prompt position " << p
                                                       << " (reference margin " << ref.margins[p] << ")";
      } else {
        ++a.top1_skipped;
      }
    }
    a.max_err = std::max(a.max_err, max_abs_error(run.logits.back(), ref.last_logits));
  } else {
    EXPECT_EQ(run.logits.size(), 1u);
    a.max_err = max_abs_error(run.logits.back(), ref.last_logits);
    if (ref.margins.back() > 2 * abs_tol) {
      ++a.top1_checked;
      EXPECT_EQ(argmax(run.logits.back()), ref.top1.back()) << "top-1 at the last prompt position";
    } else {
      ++a.top1_skipped;
    }
  }
  a.max_rel = a.max_err / scale;
  EXPECT_LE(a.max_rel, tol) << "max |logit error| " << a.max_err << " at logit scale " << scale;
  // Near ties must stay rare, or the top-1 check would be vacuous.
  EXPECT_LE(static_cast<double>(a.top1_skipped),
            max_near_ties * static_cast<double>(a.top1_checked + a.top1_skipped))
      << "too many near ties";

  a.greedy_checked = std::min(decided_greedy_steps(ref, 2 * abs_tol), run.generated.size());
  EXPECT_EQ(run.generated.size(), ref.greedy.size());
  for (size_t i = 0; i < a.greedy_checked; ++i) {
    EXPECT_EQ(run.generated[i], ref.greedy[i]) << "greedy step " << i;
  }
  std::printf("[ reference ] %s: max err %.3g (%.3g relative to %.3g), top-1 %zu checked %zu near ties, "
              "greedy %zu/%zu checked\n",
              what.c_str(), a.max_err, a.max_rel, scale, a.top1_checked, a.top1_skipped, a.greedy_checked,
              ref.greedy.size());
  return a;
}

// Two runs of the same weights: identical tokens, logits within kSameWeightsTol relative.
inline void expect_same(const EngineRun& a, const EngineRun& b, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.generated, b.generated);
  ASSERT_EQ(a.logits.size(), b.logits.size());
  double worst = 0;
  for (size_t p = 0; p < a.logits.size(); ++p) {
    double scale = 1;
    for (float x : a.logits[p]) scale = std::max(scale, static_cast<double>(std::abs(x)));
    worst = std::max(worst, max_abs_error(b.logits[p], a.logits[p]) / scale);
  }
  EXPECT_LE(worst, kSameWeightsTol);
  std::printf("[ reference ] %s: max relative difference %.3g\n", what.c_str(), worst);
}

inline EngineRun run_all(const ReferenceModel& m, const std::string& folder, size_t prompt,
                  const std::string& flags = kF32Kv) {
  const ReferencePrompt& ref = m.prompts.at(prompt);
  return run_engine(m.folder(folder), ref.tokens, static_cast<int>(ref.greedy.size()), true, flags);
}

// Two folders of the same weights on one prompt: expect_same.
inline void expect_same_folders(const ReferenceModel& m, const std::string& name, const std::string& a,
                                const std::string& b, size_t prompt) {
  expect_same(run_all(m, a, prompt), run_all(m, b, prompt),
              name + " " + a + " vs " + b + ", prompt " + std::to_string(prompt));
}

// Checks every prompt of a model on one folder.
inline void check_folder(const ReferenceModel& m, const std::string& folder, const std::string& name) {
  for (size_t i = 0; i < m.prompts.size(); ++i) {
    const ReferencePrompt& ref = m.prompts[i];
    expect_agrees(run_all(m, folder, i), ref, kLogitTol,
                  name + "/" + folder + " prompt of " + std::to_string(ref.tokens.size()));
  }
}

// A config read from a GGUF equals the one of the Hugging Face folder it was made from: every
// field, the epsilon as GGUF stores it (f32), and Llama 3.1 scaling recognised from
// rope_freqs.weight (not kept as raw divisors).
inline void expect_gguf_config_equals_hf(const model::ModelConfig& gguf, const model::ModelConfig& hf) {
  EXPECT_TRUE(gguf.rope_freq_divisors.empty()) << "rope_freqs.weight was not recognised as Llama 3.1 scaling";
  EXPECT_EQ(gguf.rope_scaling.enabled, hf.rope_scaling.enabled);
  if (hf.rope_scaling.enabled) {
    EXPECT_EQ(gguf.rope_scaling.factor, hf.rope_scaling.factor);
    EXPECT_EQ(gguf.rope_scaling.low_freq_factor, hf.rope_scaling.low_freq_factor);
    EXPECT_EQ(gguf.rope_scaling.high_freq_factor, hf.rope_scaling.high_freq_factor);
    EXPECT_EQ(gguf.rope_scaling.original_max_position, hf.rope_scaling.original_max_position);
  }
  EXPECT_EQ(gguf.dim, hf.dim);
  EXPECT_EQ(gguf.n_layers, hf.n_layers);
  EXPECT_EQ(gguf.n_heads, hf.n_heads);
  EXPECT_EQ(gguf.n_kv_heads, hf.n_kv_heads);
  EXPECT_EQ(gguf.head_dim, hf.head_dim);
  EXPECT_EQ(gguf.ffn_dim, hf.ffn_dim);
  EXPECT_EQ(gguf.vocab_size, hf.vocab_size);
  EXPECT_EQ(gguf.tied_embeddings, hf.tied_embeddings);
  EXPECT_EQ(gguf.rope_theta, hf.rope_theta);
  EXPECT_EQ(gguf.max_seq_len, hf.max_seq_len);
  EXPECT_EQ(gguf.norm_eps, static_cast<double>(static_cast<float>(hf.norm_eps)));
}

}  // namespace llama3::testing
