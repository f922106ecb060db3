#pragma once
// A request's images as the text decoder's cross-attention layers see them: every cross layer's
// keys and values of all the request's image tokens (the real tiles' tokens, images in prompt
// order), computed once when the request starts and kept until it ends, and which text
// positions see which of those tokens.
#include <cstdint>
#include <span>
#include <vector>

namespace llama3::model {

struct CrossAttentionContext {
  int64_t image_tokens = 0;
  std::vector<std::vector<float>> kt;  // per cross layer: [n_kv_heads][head_dim][image_tokens], k_norm applied
  std::vector<std::vector<float>> v;   // per cross layer: [n_kv_heads][image_tokens][head_dim]

  // From text position `from` on (up to the next entry's), the image tokens [key_begin, key_end)
  // are visible; an empty range, or a position before the first entry, sees none, and the cross
  // layers leave its row unchanged (Meta's full_text_row_masked_out_mask).
  struct Visibility {
    int64_t from = 0;
    int64_t key_begin = 0, key_end = 0;
  };
  std::vector<Visibility> visibility;

  Visibility at(int64_t pos) const;
};

// Which image each text position sees, from the positions of the image tokens in the prompt:
// Meta's create_vision_mask. Image i is seen from its own token up to the next image's token;
// consecutive image tokens are all seen up to where the last of them stops being seen; the last
// image (group) stays visible to every later position, generated ones included (as Hugging
// Face's generation and Meta's single-image path do; Meta's multi-image path cuts it at the
// prompt's end, an artifact of sizing the mask to the prompt). `image_tokens[i]` is image i's
// token count. Returns the visibility entries (CrossAttentionContext::visibility).
std::vector<CrossAttentionContext::Visibility> image_visibility(std::span<const int64_t> image_positions,
                                                                std::span<const int64_t> image_tokens);

}  // namespace llama3::model
