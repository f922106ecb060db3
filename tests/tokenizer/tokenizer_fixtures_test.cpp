// Definitions of tokenizer_fixtures.h (named *_test.cpp so the test glob compiles it; it holds
// no tests of its own).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <memory>

#include "test_support.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace llama3::testing {

namespace fs = std::filesystem;

fs::path default_tokenizer_path() { return LLAMA3_DEFAULT_TOKENIZER; }

const tokenizer::Tokenizer& llama3_tokenizer() {
  static std::unique_ptr<tokenizer::Tokenizer> tok;
  if (!tok) {
    const fs::path path = default_tokenizer_path();
    if (!fs::exists(path)) {
      ADD_FAILURE() << "missing " << path << ": run scripts/setup.sh to fetch the Llama 3.1 tokenizer";
      throw std::runtime_error("tokenizer missing");
    }
    tok = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(path));
  }
  return *tok;
}

std::string base64_encode(std::string_view bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += alphabet[(v >> s) & 63];
  }
  if (bytes.size() - i == 1) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (bytes.size() - i == 2) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

void write_tiktoken_file(const tokenizer::Tokenizer& tok, const fs::path& path) {
  std::string text;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    if (tok.is_special(id)) continue;
    text += base64_encode(tok.token_name(id));
    text += ' ';
    text += std::to_string(id);
    text += '\n';
  }
  write_text(path, text);
}

fs::path npm_dir() { return fs::path(LLAMA3_SOURCE_DIR) / ".cache" / "npm"; }

std::vector<std::string> load_corpus() {
  const fs::path path = fs::path(LLAMA3_SOURCE_DIR) / "tests" / "tokenizer" / "corpus.json";
  return nlohmann::json::parse(read_text(path)).get<std::vector<std::string>>();
}

std::string quoted(std::string_view text) {
  const std::string s(text);
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace llama3::testing
