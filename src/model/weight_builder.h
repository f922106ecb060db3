#pragma once
// Builds the weights' matrices and vectors from a checkpoint's tensors (Meta .pth shards or
// safetensors): merging model-parallel shards, un-permuting Hugging Face q/k rows, cutting a
// rank's share, and converting to the precision's format. Shared by the text and vision loaders.
#include <functional>
#include <string>
#include <vector>

#include "io/tensor_info.h"
#include "model/matrix_convert.h"
#include "model/model_weights.h"

namespace llama3::model {

// Where a tensor's parts come from: one part, or one per model-parallel shard.
using PartFinder = std::function<std::vector<const io::TensorInfo*>(const std::string& name)>;

// Element i of a BF16, F16 or F32 tensor as fp32, or as bf16 (rounded from F16/F32).
float tensor_element(const io::TensorInfo& t, int64_t i);
uint16_t tensor_element_bf16(const io::TensorInfo& t, int64_t i);
// Throws unless the tensor holds BF16, F16 or F32 values.
void check_float_tensor(const io::TensorInfo& t);

class WeightBuilder {
 public:
  WeightBuilder(ModelWeights& w, PartFinder find) : w_(w), find_(std::move(find)) {}

  // Rows `rs` and columns `cs` (a rank's share; the whole by default) of a [rows][cols] matrix
  // stored as parts concatenated along `concat_dim`, in the format `precision` gives;
  // `permuted_heads` > 0 un-permutes Hugging Face q/k rows (head_dim = rows / permuted_heads;
  // the permutation stays inside a head, and a share holds whole heads).
  Matrix matrix(const std::string& name, int64_t rows, int64_t cols, int concat_dim, MatrixPrecision precision,
                int64_t permuted_heads, Slice rs, Slice cs);

  // A [n] vector (norms are replicated across shards: the first copy is used).
  std::vector<float> vector(const std::string& name, int64_t n);

  // A whole tensor of the given shape (any rank) as fp32, from the first part: the vision
  // encoder's embeddings, gates and biases.
  std::vector<float> floats(const std::string& name, const std::vector<int64_t>& shape);

  const PartFinder& finder() const { return find_; }

 private:
  ModelWeights& w_;
  PartFinder find_;
};

}  // namespace llama3::model
