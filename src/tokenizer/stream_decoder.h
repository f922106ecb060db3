#pragma once
#include <cstdint>
#include <string>

namespace llama3::tokenizer {

class Tokenizer;

// Emits text as ids arrive, holding back an incomplete UTF-8 sequence (a character split across
// tokens) until it completes, so nothing it returns is ever a broken character.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}
  // Text that is complete so far (bytes that can never become valid come out as U+FFFD).
  // Throws llama3::Error on an id out of range.
  std::string push(int32_t id);
  // Whatever is left: an incomplete sequence becomes U+FFFD.
  std::string flush();

 private:
  const Tokenizer* tok_;
  std::string pending_;
};

}  // namespace llama3::tokenizer
