#pragma once
// Which weight format each group of matrices runs in: the precision map, and the named modes
// of the original demo that are presets of it.
//  - performance (the default, as in the original): 4-bit blocks for the MLP's w1 and w3, 8-bit
//    for the rest, the LM head included;
//  - accuracy: 8-bit blocks for every matrix;
//  - bf16: every matrix in bf16 (the checkpoints' own precision);
//  - native: every matrix as the source stores it where the kernels run that format (a Q4_0
//    GGUF stays Q4_0, bf16 stays bf16); other formats become the nearest one the kernels run
//    (model/source_matrix.h says which, and which conversions are exact). What GGUF files load
//    with by default, so a llama.cpp user gets the bits they chose.
// `--precision '{"ff1_3":"q4","wqkv":"q8",...}'` overrides single keys on top of a mode.
// The embedding table: when tied to the LM head it is the LM head's matrix (one copy, in the
// LM head's format); when untied it stays in the source's format (a lookup reads one row per
// token, so its precision costs memory, not speed).
#include <optional>
#include <string>
#include <string_view>

#include "kernels/kv_pool.h"
#include "kernels/weight_format.h"

namespace llama3::model {

// One entry of the map: a kernel format, or "as stored" (native).
struct MatrixPrecision {
  bool native = false;
  kernels::WeightFormat format = kernels::WeightFormat::BF16;  // when !native
  bool operator==(const MatrixPrecision&) const = default;
};

struct PrecisionMap {
  std::string mode = "performance";  // the preset this map started from
  MatrixPrecision wqkv, wo, ff1_3, ff2, lm_head;
  kernels::KvDType kv_cache = kernels::KvDType::BF16;

  // Canonical text, e.g. {"ff1_3":"q4","ff2":"q8",...}: part of the weight cache's key.
  std::string to_json() const;
  // True when every matrix entry is native (nothing to convert, so nothing to cache).
  bool all_native() const;
};

std::string_view precision_name(MatrixPrecision p);

// A vision model's image encoder runs 8-bit matrices (vision::quantize_vision_matrices) when
// the precision quantizes the attention matrices (performance, accuracy), bf16 otherwise.
inline bool quantized_vision_encoder(const PrecisionMap& p) {
  return !p.wqkv.native && p.wqkv.format != kernels::WeightFormat::BF16;
}

// An untied embedding table: as stored (see above).
inline MatrixPrecision embedding_precision() { return {true, kernels::WeightFormat::BF16}; }  // "bf16" | "q8" | "q4" | "native"

// The modes: performance | accuracy | bf16 | native. Throws naming the known ones.
PrecisionMap precision_mode(std::string_view mode);

// A mode, then `overrides` (a JSON object of key -> "bf16"|"q8"|"q4"|"native", plus
// "kv_cache" -> "bf16"|"f32"|"q8") on top. Unknown keys, values or bad JSON are errors naming them.
PrecisionMap make_precision(std::string_view mode, std::optional<std::string_view> overrides = {});

}  // namespace llama3::model
