#pragma once
// From a matrix as a checkpoint stores it to the format the precision map asks for. Which
// conversions are exact:
//  - exact: bf16 -> bf16 (zero-copy when the file's bytes are aligned), Q8_0 -> q8 and Q4_0 -> q4
//    (the packed layout is a permutation of ggml's blocks), Q4_0 -> q8 and Q5_0 -> q8 (same
//    scale, the integers fit in 8 bits), F16/F32 -> bf16 only for values bf16 holds exactly;
//  - rounded: F16/F32 -> bf16 (round to nearest even: relative error <= 2^-9), anything ->
//    q4 but Q4_0, and Q4_1, Q5_1, Q2_K..Q6_K -> q8 (dequantized, then ggml's Q8_0 rounding:
//    error <= half a step of the block's scale; docs/FORMATS.md has the measured error).
// Native (precision "native"): BF16, Q8_0 and Q4_0 stay as they are; F16/F32 become bf16; the
// other quantized types become q8 (the nearest format the kernels run with no more error than
// the source already has).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/ggml_type.h"
#include "model/model_weights.h"
#include "model/precision.h"

namespace llama3::model {

// A [rows][cols] matrix as stored: ggml type, row-major blocks (ggml's own layout).
struct SourceMatrix {
  std::string name;  // for error messages
  GgmlType type = GgmlType::BF16;
  const std::byte* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  size_t row_bytes() const;
};

// The kernel format `precision` gives a source of `type`; throws naming the tensor and its type
// when the engine cannot read that type.
kernels::WeightFormat target_format(const SourceMatrix& src, MatrixPrecision precision);

// Converts (or, when the bytes allow, points to) `src`; new buffers are owned by `owner`.
// The caller keeps the source bytes alive as long as the result when it may point into them.
Matrix convert_matrix(const SourceMatrix& src, MatrixPrecision precision, ModelWeights& owner);

// convert_matrix for a source whose bytes live in `scratch`, a temporary the caller filled: the
// scratch is kept (moved into `owner`) only when the result points into it.
Matrix convert_scratch(AlignedBuffer scratch, const SourceMatrix& src, MatrixPrecision precision, ModelWeights& owner);

// Every matrix of bf16 weights `src` (e.g. random weights made in bf16 and then edited) in the
// formats `precision` gives; the norms are copied. `src` must outlive the result only where a
// bf16 matrix is kept in place.
ModelWeights convert_weights(const ModelWeights& src, const PrecisionMap& precision);

// While a ConversionProgress lives, each converted matrix advances a progress line by its
// element count (the loaders call convert_matrix once per matrix, from one thread).
class ConversionProgress {
 public:
  ConversionProgress(const std::string& label, double total_elements);
  ~ConversionProgress();
  ConversionProgress(const ConversionProgress&) = delete;
  ConversionProgress& operator=(const ConversionProgress&) = delete;
};

// True when convert_matrix(src, precision) returns the source values unchanged.
bool conversion_is_exact(GgmlType type, kernels::WeightFormat target);

}  // namespace llama3::model
