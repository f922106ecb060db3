#pragma once
// Llama 3.2 Vision checkpoints: Meta's (params.json with the vision keys, consolidated.00.pth
// with text_model.* and vision_model.* tensors) and Hugging Face's MllamaForConditionalGeneration
// (language_model.* with self- and cross-attention layers numbered together, vision_model.*,
// multi_modal_projector.*), both mapped to one internal layout.
#include <vector>

#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/precision.h"
#include "model/tensor_names.h"
#include "model/weight_builder.h"

namespace llama3::model {

// The finder of a multimodal checkpoint's text tensors under the names a text checkpoint has
// ("layers.3.attention.wq.weight", "model.layers.3.self_attn.q_proj.weight", ...), so the text
// loader reads them unchanged. `cross_before` is the checkpoint's whole fusion schedule.
PartFinder multimodal_text_finder(PartFinder raw, NameStyle style, std::vector<int64_t> cross_before);

// The cross-attention layers the (possibly truncated) config keeps, the extra embeddings and
// the image encoder, read through the checkpoint's own names (`raw`).
void load_vision_parts(const ModelConfig& config, ModelWeights& w, WeightBuilder& raw, NameStyle style,
                       const PrecisionMap& precision);

}  // namespace llama3::model
