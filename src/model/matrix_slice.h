#pragma once
// A window of a source matrix (rows and columns of one rank's share, shard_plan.h) in a form the
// converters take, so that a rank converts only its slices and the result is bitwise the window
// of what converting the whole matrix gives:
//  - a window of whole rows is a view into the source (row-major storage: nothing is copied);
//  - a window of columns is copied: the raw blocks when its edges fall on the type's blocks,
//    otherwise each row is dequantized to f32 and the window kept. Every converter dequantizes
//    to f32 before it rounds (matrix_convert.h), and the target blocks (32 columns) align with
//    a rank's columns, so both give the same values as the whole matrix's conversion.
#include <cstdint>
#include <optional>

#include "model/matrix_convert.h"
#include "model/model_weights.h"
#include "model/shard_plan.h"

namespace llama3::model {

struct SourceWindow {
  SourceMatrix matrix;                  // the window, as a matrix of its own
  std::optional<AlignedBuffer> scratch;  // its bytes when they were copied
};

// Throws llama3::Error naming the tensor when the window lies outside the matrix.
SourceWindow source_window(const SourceMatrix& whole, Slice rows, Slice cols);

// The window converted to `precision`'s format (owned by `owner`, or a view into the source when
// the format allows). The source's pages are released from this process's memory map when the
// result does not point into them (MappedFile::release_pages), so a rank's resident memory
// after loading is its share, not the checkpoint.
Matrix convert_window(const SourceMatrix& whole, Slice rows, Slice cols, MatrixPrecision precision,
                      ModelWeights& owner);

}  // namespace llama3::model
