#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace llama3::tokenizer {

class Tokenizer;

struct ChatMessage {
  std::string role;
  std::string content;
};

// The Llama 3 instruct format: <|begin_of_text|>, then per message
// <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|> (content stripped of surrounding
// white space, and its special-token look-alikes kept as plain text), then the assistant header
// when `add_generation_prompt`. Exactly one BOS.
std::vector<int32_t> encode_dialog(const Tokenizer& tok, std::span<const ChatMessage> dialog,
                                   bool add_generation_prompt = true);

}  // namespace llama3::tokenizer
