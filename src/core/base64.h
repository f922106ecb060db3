#pragma once
// Strict base64 (standard alphabet, '=' padding only at the end): a corrupted input is an error,
// where Python's lenient b64decode would quietly skip characters. Used by tokenizer.model lines
// and by the server's data: URLs.
#include <optional>
#include <string>
#include <string_view>

namespace llama3 {

// The decoded bytes, or nullopt for anything that is not exactly base64.
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace llama3
