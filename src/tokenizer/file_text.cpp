#include "tokenizer/file_text.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace llama3::tokenizer {

std::string read_tokenizer_file(const std::string& path) {
  std::error_code ec;
  check(std::filesystem::is_regular_file(path, ec), "tokenizer file not found (or not a file): {}",
        path);
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open tokenizer file {}", path);
  std::ostringstream text;
  text << in.rdbuf();
  check(!in.bad(), "cannot read tokenizer file {}", path);
  return std::move(text).str();
}

}  // namespace llama3::tokenizer
