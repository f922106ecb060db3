#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llama3::tokenizer {

class Tokenizer;

struct ChatMessage {
  std::string role;
  std::string content;
  int images = 0;  // image tokens before the content (vision models; Meta's order: images, then text)
};

// The Llama 3 instruct format: <|begin_of_text|>, then per message
// <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> (content stripped of surrounding
// white space, and its special-token look-alikes kept as plain text), then the assistant header
// when `add_generation_prompt`. Exactly one BOS.
// `image_token`: the vision model's <|image|> id, written `images` times at the start of each
// message's content; a message with images needs one (-1: a text model).
std::vector<int32_t> encode_dialog(const Tokenizer& tok, std::span<const ChatMessage> dialog,
                                   bool add_generation_prompt = true, int32_t image_token = -1);

// A plain prompt for a vision model: one BOS, the text, and `image_token` wherever the text says
// "<|image|>" (the text tokenizer has no such token); with no marker, `images` image tokens right
// after the BOS. `image_token` -1 (a text model): the marker stays plain text.
std::vector<int32_t> encode_prompt_with_images(const Tokenizer& tok, std::string_view text, int32_t image_token,
                                               size_t images);

}  // namespace llama3::tokenizer
