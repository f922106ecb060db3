// The GGUF vocabulary of the real Llama 3.1 tokenizer: the arrays llama.cpp's converter writes
// for tokenizer.json must give exactly the tokenizer.json loader's ids on the whole corpus, and
// to_vocab must write exactly those arrays back.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_fixtures.h"

namespace llama3::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Ids = std::vector<int32_t>;

// What convert_hf_to_gguf.py writes for tokenizer.json + tokenizer_config.json, rebuilt here
// from the JSON as it does it, independently of our loader: get_vocab_base lists the vocab keys
// by id then the added tokens (type 3 when "special" or named <|...|>, else 4); SpecialVocab
// copies the merges and looks bos_token / eos_token of tokenizer_config.json up among the added
// tokens; the chat template is tokenizer_config.json's.
const OwnedVocabArrays& converter_arrays() {
  static const OwnedVocabArrays arrays = [] {
    const fs::path dir = testing::default_tokenizer_path().parent_path();
    const json root = json::parse(testing::read_text(dir / "tokenizer.json"));
    const json config = json::parse(testing::read_text(dir / "tokenizer_config.json"));
    std::map<int32_t, std::pair<std::string, int32_t>> by_id;  // id -> (token, type)
    for (const auto& [text, id] : root["model"]["vocab"].items())
      by_id[id.get<int32_t>()] = {text, 1};
    for (const json& t : root["added_tokens"]) {
      const std::string name = t["content"];
      const bool looks_special = name.starts_with("<|") && name.ends_with("|>");
      by_id[t["id"].get<int32_t>()] = {name, t["special"].get<bool>() || looks_special ? 3 : 4};
    }
    OwnedVocabArrays a;
    a.model = "gpt2";
    a.pre = "llama-bpe";
    for (const auto& [id, entry] : by_id) {
      EXPECT_EQ(static_cast<size_t>(id), a.tokens.size()) << "ids must have no gap";
      a.tokens.push_back(entry.first);
      a.token_types.push_back(entry.second);
    }
    for (const json& m : root["model"]["merges"]) {
      a.merges.push_back(m.is_string() ? m.get<std::string>()
                                       : m[0].get<std::string>() + " " + m[1].get<std::string>());
    }
    auto added_id = [&](const json& token) -> std::optional<int32_t> {
      const std::string name = token.is_string() ? token : token["content"];
      for (const json& t : root["added_tokens"]) {
        if (t["content"] == name) return t["id"].get<int32_t>();
      }
      return std::nullopt;
    };
    a.bos_id = added_id(config["bos_token"]);
    a.eos_id = added_id(config["eos_token"]);
    a.chat_template = config["chat_template"];
    return a;
  }();
  return arrays;
}

// Same ids as `expected` on every corpus line, plain, with BOS, with specials allowed and with
// both, and the same decoded text.
void expect_same_ids_on_corpus(const Tokenizer& tok, const Tokenizer& expected) {
  int failures = 0;
  for (const std::string& line : testing::load_corpus()) {
    for (const bool bos : {false, true}) {
      for (const bool special : {false, true}) {
        const Ids ids = tok.encode(line, bos, false, special);
        const Ids want = expected.encode(line, bos, false, special);
        if (ids != want || tok.decode(ids) != expected.decode(want)) {
          ADD_FAILURE() << testing::quoted(line) << " bos=" << bos << " special=" << special;
          if (++failures == 10) return;
        }
      }
    }
  }
}

TEST(GgufVocab, ConverterArraysGiveTheTokenizerJsonIdsOnTheWholeCorpus) {
  const Tokenizer& hf = testing::llama3_tokenizer();
  const Tokenizer gguf = Tokenizer::from_vocab(converter_arrays().view());
  expect_same_ids_on_corpus(gguf, hf);
}

TEST(GgufVocab, ConverterArraysGiveTheSameTokensSpecialsAndIds) {
  const Tokenizer& hf = testing::llama3_tokenizer();
  const Tokenizer gguf = Tokenizer::from_vocab(converter_arrays().view());
  ASSERT_EQ(gguf.vocab_size(), 128256);
  ASSERT_EQ(gguf.vocab_size(), hf.vocab_size());
  for (int32_t id = 0; id < hf.vocab_size(); ++id) {
    ASSERT_EQ(gguf.token_name(id), hf.token_name(id)) << id;
    ASSERT_EQ(gguf.is_special(id), hf.is_special(id)) << id;
    ASSERT_EQ(gguf.token_type(id), id < 128000 ? TokenType::normal : TokenType::control) << id;
  }
  EXPECT_EQ(gguf.bos_id(), 128000);
  EXPECT_EQ(gguf.eos_id(), hf.eos_id());  // what encode appends: <|end_of_text|> for both
  EXPECT_EQ(gguf.eos_id(), 128001);
  EXPECT_EQ(gguf.declared_eos_id(), 128009);  // tokenizer_config.json's <|eot_id|>
  EXPECT_EQ(gguf.encode("hi", true, true, false), hf.encode("hi", true, true, false));
}

TEST(GgufVocab, ExportOfTokenizerJsonIsWhatLlamaCppsConverterWrites) {
  const OwnedVocabArrays out = testing::llama3_tokenizer().to_vocab();
  const OwnedVocabArrays& want = converter_arrays();
  EXPECT_EQ(out.model, "gpt2");
  EXPECT_EQ(out.pre, "llama-bpe");
  EXPECT_EQ(out.tokens, want.tokens);
  EXPECT_EQ(out.token_types, want.token_types);
  EXPECT_EQ(out.merges.size(), 280147u);
  EXPECT_EQ(out.merges, want.merges);
  EXPECT_EQ(out.bos_id, 128000);
  EXPECT_EQ(out.bos_id, want.bos_id);
  EXPECT_EQ(out.eos_id, 128009);
  EXPECT_EQ(out.eos_id, want.eos_id);
  EXPECT_EQ(out.pad_id, std::nullopt);
  EXPECT_EQ(out.chat_template, want.chat_template);
  EXPECT_NE(out.chat_template.find("<|start_header_id|>"), std::string::npos);
  EXPECT_EQ(out.tokens[279], "Ġthe");
  EXPECT_EQ(out.merges[0], "Ġ Ġ");
}

TEST(GgufVocab, ExportThenFromVocabGivesTheSameIdsAndTheSameExport) {
  const Tokenizer& hf = testing::llama3_tokenizer();
  const OwnedVocabArrays out = hf.to_vocab();
  const Tokenizer back = Tokenizer::from_vocab(out.view());
  expect_same_ids_on_corpus(back, hf);
  EXPECT_TRUE(back.to_vocab() == out);
}

// tokenizer.model has no merges list; its export lists every split of every token, which is
// how Hugging Face's converter made tokenizer.json's merges from Meta's ranks.
TEST(GgufVocab, ExportOfTokenizerModelHasTokenizerJsonsMerges) {
  testing::TempDir dir("gguf-vocab-tiktoken");
  testing::write_tiktoken_file(testing::llama3_tokenizer(), dir / "tokenizer.model");
  const Tokenizer meta = Tokenizer::load(dir / "tokenizer.model");
  const OwnedVocabArrays out = meta.to_vocab();
  const OwnedVocabArrays& want = converter_arrays();
  EXPECT_EQ(out.merges, want.merges);
  ASSERT_EQ(out.tokens.size(), want.tokens.size());
  EXPECT_TRUE(std::equal(out.tokens.begin(), out.tokens.begin() + 128000, want.tokens.begin()));
  EXPECT_EQ(out.tokens[128008], "<|eom_id|>");  // tokenizer.model's Llama 3.1 names
  EXPECT_EQ(out.eos_id, 128001);                // no config: the eos encode appends
  EXPECT_EQ(out.chat_template, "");
  const Tokenizer back = Tokenizer::from_vocab(out.view());
  for (const std::string& line : testing::load_corpus()) {
    ASSERT_EQ(back.encode(line, true, false), meta.encode(line, true, false))
        << testing::quoted(line);
  }
}

}  // namespace
}  // namespace llama3::tokenizer
