#pragma once
// The Llama 3 tokenizer: byte-level BPE behind the Llama 3 pre-tokenizer, with Meta's handling
// of special tokens and very long inputs. Loads Meta's tokenizer.model, Hugging Face's
// tokenizer.json or a GGUF file's vocabulary; all give the same ids for the same text.
// docs/TOKENIZER.md has the details.
// A loaded Tokenizer is immutable: its const methods may be called from many threads at once.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer_data.h"

namespace llama3::tokenizer {

class Tokenizer {
 public:
  // tokenizer.json (reads a sibling tokenizer_config.json if present) or tokenizer.model; the
  // format is told by the content (JSON starts with '{'). Throws llama3::Error naming the file
  // and the problem for a missing, truncated or malformed file.
  static Tokenizer load(const std::filesystem::path& path);
  // A GGUF file's vocabulary (gguf_vocab.h): model "gpt2" with a Llama 3 pre-tokenizer; normal
  // tokens first, then the special ones (control or user-defined types). Throws llama3::Error
  // naming the key and entry at fault.
  static Tokenizer from_vocab(const VocabArrays& vocab);
  explicit Tokenizer(TokenizerData data);

  // This tokenizer as llama.cpp's converter would write it into a GGUF file; from_vocab of it
  // gives the same ids. The eos id written is the declared one, else eos_id().
  OwnedVocabArrays to_vocab() const;

  // Text to ids. Invalid UTF-8 in `text` is replaced by U+FFFD (one per maximal ill-formed
  // subpart) before encoding. Special-token names inside `text` are plain text unless
  // `allow_special`, which makes each one its special id. `bos`/`eos` add <|begin_of_text|> /
  // <|end_of_text|> around the result.
  std::vector<int32_t> encode(std::string_view text, bool bos, bool eos,
                              bool allow_special = false) const;

  // Ids to text; a special token becomes its name, and bytes that do not form valid UTF-8
  // become U+FFFD (as Meta's and Hugging Face's decoders do). Throws llama3::Error on an id out
  // of range.
  std::string decode(std::span<const int32_t> ids) const;
  // The raw bytes of `ids`, possibly invalid UTF-8 (what StreamDecoder builds on).
  std::string decode_bytes(std::span<const int32_t> ids) const;

  int32_t vocab_size() const { return bpe_.size() + static_cast<int32_t>(special_names_.size()); }
  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  // Generation stops at <|end_of_text|> 128001, <|eom_id|> 128008 and <|eot_id|> 128009: by id,
  // whatever names the file gives them.
  bool is_stop(int32_t id) const { return id == 128001 || id == 128008 || id == 128009; }
  bool is_special(int32_t id) const { return id >= bpe_.size() && id < vocab_size(); }
  // Special token names; raw token bytes otherwise. Throws llama3::Error on an id out of range.
  std::string_view token_name(int32_t id) const;
  // Id of the special token named `name`; throws llama3::Error if there is none.
  int32_t special_id(std::string_view name) const;
  // normal for BPE tokens; control or user_defined for special ones. Throws on an id out of range.
  TokenType token_type(int32_t id) const;
  const BpeModel& bpe() const { return bpe_; }

  // Kept from the files for GGUF (TokenizerData): not used to encode.
  std::optional<int32_t> declared_eos_id() const { return declared_eos_id_; }
  std::optional<int32_t> pad_id() const { return pad_id_; }
  const std::string& chat_template() const { return chat_template_; }

 private:
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;
  void encode_with_specials(std::string_view text, std::vector<int32_t>& out) const;
  void check_id(int32_t id) const;

  BpeModel bpe_;
  std::vector<std::string> special_names_;
  std::vector<TokenType> special_types_;
  std::unordered_map<std::string, int32_t> special_ids_;
  size_t longest_special_ = 0;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  std::optional<int32_t> declared_eos_id_;
  std::optional<int32_t> pad_id_;
  std::string chat_template_;
};

}  // namespace llama3::tokenizer

// The rest of the public tokenizer API, so one include gives it all.
#include "tokenizer/chat_format.h"     // IWYU pragma: export
#include "tokenizer/stream_decoder.h"  // IWYU pragma: export
