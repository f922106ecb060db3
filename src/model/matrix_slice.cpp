#include "model/matrix_slice.h"

#include <cstring>
#include <span>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/parallel.h"
#include "core/quant_blocks.h"

namespace llama3::model {

SourceWindow source_window(const SourceMatrix& whole, Slice rows, Slice cols) {
  check(rows.begin >= 0 && rows.size > 0 && rows.end() <= whole.rows && cols.begin >= 0 && cols.size > 0 &&
            cols.end() <= whole.cols,
        "tensor {}: the window rows {}..{}, columns {}..{} lies outside its [{}, {}]", whole.name, rows.begin,
        rows.end() - 1, cols.begin, cols.end() - 1, whole.rows, whole.cols);
  const size_t row_bytes = whole.row_bytes();
  SourceWindow out;
  out.matrix = whole;
  out.matrix.rows = rows.size;
  out.matrix.cols = cols.size;
  const std::byte* first_row = whole.data + static_cast<size_t>(rows.begin) * row_bytes;
  if (cols.begin == 0 && cols.size == whole.cols) {
    out.matrix.data = first_row;
    return out;
  }
  const GgmlTypeTraits traits = ggml_traits(whole.type);
  const bool on_blocks = cols.begin % traits.block_elements == 0 && cols.size % traits.block_elements == 0;
  if (!on_blocks) out.matrix.type = GgmlType::F32;
  const size_t out_row_bytes = out.matrix.row_bytes();
  AlignedBuffer& scratch = out.scratch.emplace(static_cast<size_t>(rows.size) * out_row_bytes);
  std::byte* dst = scratch.data();
  parallel_for(static_cast<size_t>(rows.size), [&](size_t r0, size_t r1) {
    std::vector<float> row;
    for (size_t r = r0; r < r1; ++r) {
      const std::byte* src_row = first_row + r * row_bytes;
      if (on_blocks) {
        const size_t offset = static_cast<size_t>(cols.begin / traits.block_elements * traits.block_bytes);
        std::memcpy(dst + r * out_row_bytes, src_row + offset, out_row_bytes);
      } else {
        row.resize(static_cast<size_t>(whole.cols));
        dequantize_row(whole.type, {src_row, row_bytes}, row);
        std::memcpy(dst + r * out_row_bytes, row.data() + cols.begin, out_row_bytes);
      }
    }
  });
  out.matrix.data = dst;
  return out;
}

Matrix convert_window(const SourceMatrix& whole, Slice rows, Slice cols, MatrixPrecision precision,
                      ModelWeights& owner) {
  // The whole matrix's type decides a native target: a window dequantized to f32 must still
  // become what its source type would (Q4_K -> q8, not bf16).
  const MatrixPrecision fixed{false, target_format(whole, precision)};
  SourceWindow window = source_window(whole, rows, cols);
  const SourceMatrix& src = window.matrix;
  const Matrix m = window.scratch ? convert_scratch(std::move(*window.scratch), src, fixed, owner)
                                  : convert_matrix(src, fixed, owner);
  const std::byte* read_begin = whole.data + static_cast<size_t>(rows.begin) * whole.row_bytes();
  const size_t read_bytes = static_cast<size_t>(rows.size) * whole.row_bytes();
  const bool points_into_source = m.data >= read_begin && m.data < read_begin + read_bytes;
  if (!points_into_source) MappedFile::release_pages({read_begin, read_bytes});
  return m;
}

}  // namespace llama3::model
