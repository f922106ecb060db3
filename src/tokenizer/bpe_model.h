#pragma once
// Byte-level BPE over a rank table: the model of both tokenizer.model (tiktoken: every pair of
// tokens whose concatenation is a token merges, at that token's rank) and tokenizer.json (the
// merges list, at the merge's index). A piece that is itself a token is emitted whole (tiktoken
// does so; tokenizer.json says "ignore_merges"). Otherwise the adjacent pair of lowest rank
// merges first, leftmost among equals, as tiktoken and Hugging Face both do.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llama3::tokenizer {

class BpeModel {
 public:
  struct Merge {
    int32_t left;
    int32_t right;
    int32_t rank;    // lower merges first
    int32_t merged;  // the id the pair becomes
  };

  BpeModel() = default;
  // `tokens[i]` holds the bytes of token id i; every single byte must be a token and no two
  // tokens may have the same bytes. Throws llama3::Error otherwise.
  // Tiktoken's rule: the rank of a pair is the id of its concatenation, for every split of
  // every token into two tokens.
  static BpeModel from_ranks(std::vector<std::string> tokens);
  // Hugging Face's rule: only listed merges apply, at their index in the list.
  // `whole_piece_lookup` is tokenizer.json's "ignore_merges".
  static BpeModel from_merges(std::vector<std::string> tokens, std::span<const Merge> merges,
                              bool whole_piece_lookup);

  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  // The two merge loops encode_piece chooses between by length (quadratic scan for short
  // pieces, a heap for long ones); public so tests can check they agree.
  void merge_small(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_heap(std::string_view piece, std::vector<int32_t>& out) const;

  int32_t size() const { return static_cast<int32_t>(offsets_.size()) - 1; }
  std::string_view token_bytes(int32_t id) const {
    return std::string_view(bytes_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  // Id of the token with exactly these bytes, or -1.
  int32_t find(std::string_view bytes) const;

 private:
  struct PairSlot {
    uint64_t key = kEmptyKey;
    int32_t rank = 0;
    int32_t merged = 0;
  };
  static constexpr uint64_t kEmptyKey = ~uint64_t{0};
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const PairSlot* find_pair(int32_t left, int32_t right) const;
  explicit BpeModel(std::vector<std::string> tokens);
  void index_pairs(std::span<const Merge> merges);

  std::string bytes_;              // all token bytes, back to back
  std::vector<uint32_t> offsets_;  // token i is bytes_[offsets_[i], offsets_[i+1])
  std::vector<int32_t> token_slots_;  // open addressing: token id or -1
  std::vector<uint32_t> token_hashes_;
  std::vector<PairSlot> pair_slots_;
  int32_t byte_ids_[256] = {};
  bool whole_piece_lookup_ = true;
};

}  // namespace llama3::tokenizer
