#pragma once
// Reading a tokenizer file whole, with an error that names it.
#include <string>

namespace llama3::tokenizer {

std::string read_tokenizer_file(const std::string& path);

}  // namespace llama3::tokenizer
