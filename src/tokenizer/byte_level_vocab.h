#pragma once
// The text form of a byte-level BPE vocabulary, which tokenizer.json and GGUF files share: each
// token's bytes written in GPT-2's byte-level alphabet (printable bytes stand for themselves, the
// others are shifted to U+0100 and up, so " the" is "Ġthe"), each merge as "left right".
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tokenizer/bpe_model.h"

namespace llama3::tokenizer {

// `bytes` in the byte-level alphabet.
std::string to_byte_level(std::string_view bytes);
// The bytes `text` stands for; nullopt when `text` is not byte-level text.
std::optional<std::string> from_byte_level(std::string_view text);

struct MergeText {
  std::string_view left;
  std::string_view right;
};
// "left right" split at its one space; nullopt unless there is exactly one space with text on
// both sides (byte-level text writes the space byte as "Ġ", so a token never holds one).
std::optional<MergeText> split_merge(std::string_view text);

// Token text -> id. The views point into the caller's storage.
using TokenTextIndex = std::unordered_map<std::string_view, int32_t>;
// Indexes `texts` (id = position); two equal texts are an error naming `where` and both ids.
TokenTextIndex index_token_texts(std::span<const std::string_view> texts, std::string_view where);

// The BPE model whose tokens are `texts` (byte-level, ids 0..size-1) and whose merges are
// `merges` (rank = position; both sides and their concatenation must be tokens of `texts`).
// `ids` indexes at least `texts`; ids it maps to outside them do not count as tokens here.
// Errors name `where` and the token or merge at fault.
BpeModel byte_level_bpe(std::span<const std::string_view> texts, const TokenTextIndex& ids,
                        std::span<const MergeText> merges, bool whole_piece_lookup,
                        std::string_view where);

}  // namespace llama3::tokenizer
