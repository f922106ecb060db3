#pragma once
// Shared fixtures of the tokenizer tests: the real Llama 3.1 tokenizer (fetched by
// scripts/setup.sh), its rank file written in Meta's format, and the corpus.
#include <filesystem>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace llama3::testing {

// The default tokenizer.json, loaded once. Fails the calling test (with a message saying to run
// scripts/setup.sh) when the file is missing.
const tokenizer::Tokenizer& llama3_tokenizer();
std::filesystem::path default_tokenizer_path();

// Writes the BPE part of `tok` as a tiktoken-format tokenizer.model (base64(bytes) rank).
void write_tiktoken_file(const tokenizer::Tokenizer& tok, const std::filesystem::path& path);
std::string base64_encode(std::string_view bytes);

// The npm packages folder set up by scripts/setup.sh.
std::filesystem::path npm_dir();

// tests/tokenizer/corpus.json as strings.
std::vector<std::string> load_corpus();

// A string as a JSON literal, for readable failure messages.
std::string quoted(std::string_view text);

}  // namespace llama3::testing
