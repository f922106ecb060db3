#include "model/model_weights.h"

namespace llama3::model {

uint16_t* ModelWeights::allocate(int64_t n) {
  // for_overwrite: no zero fill; every caller writes all n elements.
  buffers.push_back(std::make_unique_for_overwrite<uint16_t[]>(static_cast<size_t>(n)));
  return buffers.back().get();
}

}  // namespace llama3::model
