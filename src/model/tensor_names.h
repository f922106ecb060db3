#pragma once
// Tensor names of the two checkpoint layouts, shared by the loader and the writers.
#include <cstdint>
#include <string>

#include "model/model_weights.h"

namespace llama3::model {

enum class LayerTensor { Wq, Wk, Wv, Wo, W1, W2, W3, AttentionNorm, FfnNorm };
inline constexpr LayerTensor kLayerTensors[] = {LayerTensor::Wq, LayerTensor::Wk, LayerTensor::Wv,
                                                LayerTensor::Wo, LayerTensor::W1, LayerTensor::W2,
                                                LayerTensor::W3, LayerTensor::AttentionNorm, LayerTensor::FfnNorm};

inline bool is_norm(LayerTensor t) { return t == LayerTensor::AttentionNorm || t == LayerTensor::FfnNorm; }

enum class NameStyle { Meta, HuggingFace };

struct TensorNames {
  NameStyle style;
  const char* embed;
  const char* output;
  const char* norm;
  std::string layer(int64_t l, LayerTensor t) const;
};

const TensorNames& tensor_names(NameStyle style);

// The weights behind a layer tensor name (a matrix, or a norm vector for the norms).
const Matrix& layer_matrix(const LayerWeights& layer, LayerTensor t);
const std::vector<float>& layer_norm(const LayerWeights& layer, LayerTensor t);

}  // namespace llama3::model
