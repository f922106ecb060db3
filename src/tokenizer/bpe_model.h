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

  // The two merge loops encode_piece chooses between by length (a rescanned array for pieces
  // of up to 64 bytes, a heap beyond, where merge_small hands over to merge_heap); public so
  // tests can check they agree.
  void merge_small(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_heap(std::string_view piece, std::vector<int32_t>& out) const;

  int32_t size() const { return static_cast<int32_t>(offsets_.size()) - 1; }
  std::string_view token_bytes(int32_t id) const {
    return std::string_view(bytes_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  // Id of the token with exactly these bytes, or -1.
  int32_t find(std::string_view bytes) const;
  // Every pair that merges, by rank, then left id, then right id: from_merges' list without
  // repeated pairs; for from_ranks (all splits of a token share its rank) the order in which
  // Hugging Face's tiktoken converter lists them, which is how Llama 3's tokenizer.json was made.
  std::vector<Merge> merges() const;
  bool whole_piece_lookup() const { return whole_piece_lookup_; }

 private:
  // Pair table slot: (left, right) in the low 34 bits (ids < 2^17), rank in the high 30; the
  // merged id is merged_by_rank_[rank]. Eight bytes a slot keeps the table cache-friendly, which
  // is most of encode's time.
  using PairSlot = uint64_t;
  static constexpr int kIdBits = 17;
  static constexpr uint64_t kKeyMask = (uint64_t{1} << (2 * kIdBits)) - 1;
  static constexpr PairSlot kEmptySlot = ~uint64_t{0};
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(left) << kIdBits) | static_cast<uint64_t>(right);
  }
  // Rank of the pair, or -1.
  int32_t pair_rank(int32_t left, int32_t right) const;
  int32_t merged_id(int32_t rank) const { return merged_by_rank_[rank]; }
  explicit BpeModel(std::vector<std::string> tokens);
  void index_pairs(std::span<const Merge> merges);

  std::string bytes_;              // all token bytes, back to back
  std::vector<uint32_t> offsets_;  // token i is bytes_[offsets_[i], offsets_[i+1])
  // Token table slot. Most tokens are at most 8 bytes: they compare inside the slot, without
  // touching the byte arena.
  struct TokenSlot {
    uint64_t head;    // first 8 bytes, zero padded
    uint32_t length;  // bytes
    int32_t id;       // -1: empty
  };
  std::vector<TokenSlot> token_slots_;  // open addressing on the hash of the bytes
  std::vector<PairSlot> pair_slots_;
  std::vector<int32_t> merged_by_rank_;
  // Ranks of all byte pairs (-1: none), the first lookups of every merge: a 256 kB table that
  // stays in cache instead of probing the big pair table.
  std::vector<int32_t> byte_pair_ranks_;
  int32_t byte_ids_[256] = {};
  bool whole_piece_lookup_ = true;
};

}  // namespace llama3::tokenizer
