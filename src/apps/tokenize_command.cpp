// `llama3 tokenize` and `llama3 detokenize`: the tokenizer from the command line, for scripts
// and tests. Output is JSON arrays of ids, one per input.
#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "apps/command.h"
#include "runtime/tokenizer_location.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace llama3::apps {

namespace {

namespace fs = std::filesystem;

struct TokenizerOptions {
  std::optional<fs::path> tokenizer;
  std::optional<fs::path> model;

  void add_to(CLI::App& app) {
    app.add_option("--tokenizer", tokenizer, "tokenizer.json or tokenizer.model to use");
    app.add_option("--model", model, "model folder whose tokenizer to use");
  }
  tokenizer::Tokenizer load() const {
    return runtime::load_tokenizer(tokenizer, model);
  }
};

struct TokenizeOptions {
  TokenizerOptions source;
  std::optional<std::string> text;
  std::optional<fs::path> file;
  std::string system;
  bool bos = false;
  bool eos = false;
  bool chat = false;
  bool allow_special = false;
};

std::vector<int32_t> tokenize_one(const tokenizer::Tokenizer& tok, const TokenizeOptions& o,
                                  const std::string& text) {
  if (o.chat) {
    // The dialog starts with its own <|begin_of_text|>, so --bos adds nothing here.
    std::vector<tokenizer::ChatMessage> dialog;
    if (!o.system.empty()) dialog.push_back({"system", o.system});
    dialog.push_back({"user", text});
    return tokenizer::encode_dialog(tok, dialog, true);
  }
  return tok.encode(text, o.bos, o.eos, o.allow_special);
}

void print_ids(const std::vector<int32_t>& ids) {
  std::string line = nlohmann::json(ids).dump();
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
}

int run_tokenize(const TokenizeOptions& o) {
  check(o.text.has_value() != o.file.has_value(), "tokenize: give exactly one of --text or --file");
  const auto tok = o.source.load();
  if (o.text) {
    print_ids(tokenize_one(tok, o, *o.text));
    return 0;
  }
  std::FILE* in = std::fopen(o.file->c_str(), "rb");
  check(in != nullptr, "tokenize: cannot open --file {}", o.file->string());
  std::string content;
  char buffer[1 << 16];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, in)) > 0;) content.append(buffer, n);
  std::fclose(in);
  // One array per line; a final newline ends the last line rather than starting an empty one,
  // and a line's trailing '\r' (CRLF files) is not part of its text.
  size_t pos = 0;
  while (pos < content.size()) {
    size_t eol = content.find('\n', pos);
    if (eol == std::string::npos) eol = content.size();
    std::string line = content.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    print_ids(tokenize_one(tok, o, line));
    pos = eol + 1;
  }
  return 0;
}

// Accepts "[1, 2, 3]", "1,2,3" or "1 2 3".
std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  auto is_separator = [](char c) {
    return c == ' ' || c == ',' || c == '[' || c == ']' || c == '\t' || c == '\n' || c == '\r';
  };
  while (i < text.size()) {
    if (is_separator(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && !is_separator(text[j])) ++j;
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data() + i, text.data() + j, value);
    check(ec == std::errc() && end == text.data() + j && value >= INT32_MIN && value <= INT32_MAX,
          "detokenize: '{}' is not a token id", text.substr(i, j - i));
    ids.push_back(static_cast<int32_t>(value));
    i = j;
  }
  return ids;
}

const CommandRegistrar tokenize_registrar{
    "tokenize", "print the token ids of a text (JSON array), or of each line of a file",
    [](CLI::App& app) {
      auto o = std::make_shared<TokenizeOptions>();
      app.add_option("--text", o->text, "text to tokenize");
      app.add_option("--file", o->file, "tokenize each line of this file (one array per line)");
      app.add_flag("--bos", o->bos, "start with <|begin_of_text|>");
      app.add_flag("--eos", o->eos, "end with <|end_of_text|>");
      app.add_flag("--chat", o->chat,
                   "format the text as a user message of the Llama 3 chat format (one BOS)");
      app.add_option("--system", o->system, "with --chat: a system message first");
      app.add_flag("--allow-special", o->allow_special,
                   "read special-token names in the text as special tokens (default: plain text)");
      o->source.add_to(app);
      return [o] { return run_tokenize(*o); };
    }};

const CommandRegistrar detokenize_registrar{
    "detokenize", "print the text of token ids", [](CLI::App& app) {
      auto tokens = std::make_shared<std::string>();
      auto source = std::make_shared<TokenizerOptions>();
      app.add_option("--tokens", *tokens, "ids: \"[1, 2, 3]\", \"1,2,3\" or \"1 2 3\"")->required();
      source->add_to(app);
      return [tokens, source] {
        const auto tok = source->load();
        std::string text = tok.decode(parse_ids(*tokens));
        text += '\n';
        std::fwrite(text.data(), 1, text.size(), stdout);
        return 0;
      };
    }};

}  // namespace

}  // namespace llama3::apps
