// Tokenizer files: tokenizer.json (Hugging Face, with an optional tokenizer_config.json beside it)
// and tokenizer.model (Meta's tiktoken ranks). The first byte picks the file; for tokenizer.json
// an optional second part after a 0xFF byte is the tokenizer_config.json.
// Properties: a tokenizer that loads encodes text to ids inside its vocabulary, decodes them, and
// survives to_vocab -> from_vocab with the same ids for the same text.
#include <algorithm>
#include <vector>

#include "fuzz_support.h"
#include "tokenizer/tokenizer.h"

using namespace llama3;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::span<const uint8_t> rest(data + 1, size - 1);
  const std::filesystem::path dir = fuzz::scratch_dir() / "tok";
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir / "tokenizer_config.json");
  std::filesystem::path path;
  if (data[0] % 2 == 0) {
    const auto split = std::find(rest.begin(), rest.end(), uint8_t{0xFF});
    const std::span<const uint8_t> json(rest.begin(), split);
    path = dir / "tokenizer.json";
    std::filesystem::rename(fuzz::write_scratch("t.json", json), path);
    if (split != rest.end()) {
      std::filesystem::rename(fuzz::write_scratch("c.json", std::span<const uint8_t>(split + 1, rest.end())),
                              dir / "tokenizer_config.json");
    }
  } else {
    path = dir / "tokenizer.model";
    std::filesystem::rename(fuzz::write_scratch("t.model", rest), path);
  }
  std::optional<tokenizer::Tokenizer> tok;
  if (!fuzz::accepts([&] { tok.emplace(tokenizer::Tokenizer::load(path)); })) return 0;
  const tokenizer::OwnedVocabArrays owned = tok->to_vocab();
  std::optional<tokenizer::Tokenizer> again;
  const bool reloads = fuzz::accepts([&] { again.emplace(tokenizer::Tokenizer::from_vocab(owned.view())); });
  for (std::string_view text : {"Hello, world! 123", " \xc3\xa9t\xc3\xa9\n\n  x", "<|begin_of_text|>a<|eot_id|>"}) {
    std::vector<int32_t> ids;
    if (!fuzz::accepts([&] { ids = tok->encode(text, true, false, true); })) continue;
    for (int32_t id : ids) fuzz::require(id >= 0 && id < tok->vocab_size(), "encode gave an id outside the vocabulary");
    fuzz::accepts([&] { (void)tok->decode(ids); });
    if (reloads) {
      std::vector<int32_t> ids_again;
      if (fuzz::accepts([&] { ids_again = again->encode(text, true, false, true); })) {
        fuzz::require(ids_again == ids, "to_vocab -> from_vocab changed the ids");
      }
    }
  }
  return 0;
}
