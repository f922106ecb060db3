#pragma once
// The random models of the end-to-end reference tests (tests/reference/make_model.py), shared by
// reference_test.cpp (Meta and Hugging Face folders) and gguf_reference_test.cpp (GGUF files of
// the same weights). Each is generated once and cached under the build tree (reference_fixture.h):
// the arguments here are part of the cache key, so every test process finds the same folder.
#include <string>
#include <utility>
#include <vector>

#include "model/reference_fixture.h"

namespace llama3::testing {

// ---------------------------------------------------------------------------------------------
// The models.
// ---------------------------------------------------------------------------------------------

// Long prompt on which the RoPE scaling factor (8 vs 32) changes the first greedy token with a
// clear lead for both (found by scanning prompt lengths 1001..1100 of random:*:3;
// ReferenceRopeScaling.FactorChangesGreedyTokensOnLongPrompt asserts it still holds, so a change
// of the scripts cannot silently make the test blind).
inline const std::string kLongPrompt = "random:1052:3@last@greedy=4";

// Configs shared by a model and its quantized twin.
inline const std::string kGqaTiedS8 =
    R"({"dim":256,"n_layers":2,"n_heads":4,"n_kv_heads":2,"vocab_size":512,"ffn_dim":768,)"
    R"("rope_scaling_factor":8,"tied":true})";
inline const std::string kMhaUntiedLlama30 =
    R"({"dim":192,"n_layers":2,"n_heads":3,"n_kv_heads":3,"vocab_size":512,"ffn_dim":512,)"
    R"("rope_scaling_factor":null,"tied":false})";
inline const std::string kGqaUntiedS32 =
    R"({"dim":256,"n_layers":2,"n_heads":8,"n_kv_heads":2,"vocab_size":512,"ffn_dim":640,)"
    R"("rope_scaling_factor":32,"tied":false,"rope_theta":250000.0,"norm_eps":1e-3})";

// GQA (4 query heads on 2 kv heads, head_dim 64), tied embeddings, Llama 3.1 scaling factor 8.
// Prompts: 0 = one token, 1 = 7 tokens, 2 = 300 tokens, 3 = the long prompt. GGUF files: gguf
// (bf16), gguf16, gguf32 and the negative control gguf_hf_order (q/k rows left in HF's order).
inline const ReferenceModel& gqa_tied_s8() {
  static const ReferenceModel m = cached_reference_model(
      {"gqa_tied_s8",
       kGqaTiedS8,
       1,
       {"7", "random:7:1", "random:300:2@kvbf16", kLongPrompt},
       {"--greedy", "8", "--variant", "meta:meta2:shards=2", "--variant", "meta:meta4:shards=4",
        "--variant", "hf:hf3:shards=3", "--variant", "hf:hf16:dtype=f16", "--variant",
        "hf:hf32:dtype=f32", "--variant", "hf:hf_unpermuted:permute=false", "--variant", "gguf:gguf",
        "--variant", "gguf:gguf16:dtype=f16", "--variant", "gguf:gguf32:dtype=f32", "--variant",
        "gguf:gguf_hf_order:undo_permute=false"}});
  return m;
}

// The same weights (same seed and shapes) with scaling factor 32 (as Llama 3.2 1B/3B).
inline const ReferenceModel& gqa_tied_s32() {
  static const ReferenceModel m = cached_reference_model(
      {"gqa_tied_s32",
       R"({"dim":256,"n_layers":2,"n_heads":4,"n_kv_heads":2,"vocab_size":512,"ffn_dim":768,)"
       R"("rope_scaling_factor":32,"tied":true})",
       1,
       {"random:7:1", kLongPrompt},
       {"--greedy", "8", "--variant", "gguf:gguf"}});
  return m;
}

// MHA (3 heads, 3 kv heads), untied head, Llama 3.0 (no RoPE scaling: no use_scaled_rope in
// params.json, rope_scaling null in config.json).
inline const ReferenceModel& mha_untied_llama30() {
  static const ReferenceModel m = cached_reference_model(
      {"mha_untied_llama30",
       kMhaUntiedLlama30,
       2,
       {"5", "random:7:4", "random:320:5"},
       {"--greedy", "8", "--variant", "meta:meta2:shards=2", "--variant", "gguf:gguf"}});
  return m;
}

// GQA 8 on 2 (head_dim 32), untied, factor 32, with a non-default rope_theta and norm_eps so
// that both are proven to be read from the files. The eps is large (1e-3) because with std-1
// embeddings the mean square under each norm is ~1: 1e-6 vs 1e-5 would move logits by only 8e-6
// relative, under the tolerance; 1e-3 vs 1e-5 moves them by ~1e-3.
inline const ReferenceModel& gqa_untied_s32() {
  static const ReferenceModel m = cached_reference_model(
      {"gqa_untied_s32",
       kGqaUntiedS32,
       3,
       {"random:7:6", "random:200:7"},
       {"--greedy", "8", "--variant", "gguf:gguf"}});
  return m;
}

// GGUF files whose matrices are Q8_0 or Q4_0 blocks (ggml's reference rounding of the bf16
// weights): the reference computes with the dequantized values (make_model.py --quantized), so a
// model of the same config and seed as above but not the same numbers. One folder, gguf. Prompts
// carry @bf16w (the answers for the matrices rounded to bf16, what --optimizations bf16 runs)
// and the long one @actq8 (every product's input rounded to int8 blocks).
inline ReferenceSpec quantized_spec(const std::string& name, const std::string& config, int seed,
                                    std::vector<std::string> prompts, const std::string& type) {
  return {name, config, seed, std::move(prompts),
          {"--greedy", "8", "--no-meta", "--no-hf", "--quantized", type, "--variant", "gguf:gguf:dtype=" + type}};
}

// gqa_tied_s8's config and seed in Q8_0 (GQA, tied: the embedding table is the Q8_0 head).
inline const ReferenceModel& gqa_tied_s8_q8_0() {
  static const ReferenceModel m = cached_reference_model(quantized_spec(
      "gqa_tied_s8_q8_0", kGqaTiedS8, 1, {"7@bf16w", "random:7:1@bf16w", "random:300:2@bf16w@actq8"}, "q8_0"));
  return m;
}

// mha_untied_llama30's in Q4_0 (MHA, untied: the embedding table is Q4_0 too, no RoPE scaling).
inline const ReferenceModel& mha_untied_llama30_q4_0() {
  static const ReferenceModel m = cached_reference_model(quantized_spec(
      "mha_untied_llama30_q4_0", kMhaUntiedLlama30, 2, {"5@bf16w", "random:7:4@bf16w", "random:320:5@bf16w@actq8"},
      "q4_0"));
  return m;
}

// gqa_untied_s32's in Q4_0 (GQA 8 on 2, untied, factor 32, theta 250000, eps 1e-3).
inline const ReferenceModel& gqa_untied_s32_q4_0() {
  static const ReferenceModel m = cached_reference_model(quantized_spec(
      "gqa_untied_s32_q4_0", kGqaUntiedS32, 3, {"random:7:6@bf16w", "random:200:7@bf16w@actq8"}, "q4_0"));
  return m;
}

// The real vocabulary's size (128256, so that a GGUF can carry Llama 3's tokenizer and llama.cpp
// loads it), at small sizes otherwise: 2 layers of dim 256 (a multiple of 256, as llama.cpp's
// K-quants need), GQA 4 on 2, tied, RoPE scaled by 8. A Hugging Face folder plus GGUF files of the
// same weights from the reference's own writer in each type (py_bf16, py_f16, py_f32, py_q8_0,
// py_q4_0). No prompts: the tests compare files and engines, not the reference's logits.
inline const ReferenceModel& real_vocab_model() {
  static const ReferenceModel m = cached_reference_model(
      {"real_vocab",
       R"({"dim":256,"n_layers":2,"n_heads":4,"n_kv_heads":2,"vocab_size":128256,"ffn_dim":768,)"
       R"("rope_scaling_factor":8,"tied":true})",
       5,
       {},
       {"--no-meta", "--variant", "gguf:py_bf16", "--variant", "gguf:py_f16:dtype=f16", "--variant",
        "gguf:py_f32:dtype=f32", "--variant", "gguf:py_q8_0:dtype=q8_0", "--variant", "gguf:py_q4_0:dtype=q4_0"}});
  return m;
}

}  // namespace llama3::testing
