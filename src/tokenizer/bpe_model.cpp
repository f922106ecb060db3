#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <queue>
#include <tuple>

#include "core/error.h"

namespace llama3::tokenizer {

namespace {

// Pieces up to this many bytes merge by rescanning a small array (cache friendly, what tiktoken
// does); longer ones use a heap so a 100 kB run of one letter stays O(n log n).
constexpr size_t kSmallPiece = 64;
constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

uint64_t mix(uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  return x;
}

uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = mix(h ^ w) * 0x9E3779B97F4A7C15ull;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  return mix(h ^ tail ^ (static_cast<uint64_t>(s.size()) << 56));
}

// Open-addressing tables stay at most ~2/3 full.
uint64_t head_of(std::string_view s) {
  uint64_t head = 0;
  std::memcpy(&head, s.data(), std::min<size_t>(8, s.size()));
  return head;
}

size_t table_capacity(size_t entries) {
  return std::bit_ceil(std::max<size_t>(16, entries + entries / 2));
}

}  // namespace

BpeModel::BpeModel(std::vector<std::string> tokens) {
  check(!tokens.empty(), "BPE vocabulary is empty");
  offsets_.reserve(tokens.size() + 1);
  size_t total = 0;
  for (const auto& t : tokens) total += t.size();
  check(total < std::numeric_limits<uint32_t>::max(), "BPE vocabulary too large");
  bytes_.reserve(total);
  offsets_.push_back(0);
  for (const auto& t : tokens) {
    bytes_ += t;
    offsets_.push_back(static_cast<uint32_t>(bytes_.size()));
  }
  check(size() < (1 << kIdBits), "BPE vocabulary of {} tokens is too large (limit {})", size(),
        1 << kIdBits);
  const size_t capacity = table_capacity(tokens.size());
  token_slots_.assign(capacity, TokenSlot{0, 0, -1});
  for (int32_t id = 0; id < size(); ++id) {
    const std::string_view bytes = token_bytes(id);
    check(!bytes.empty(), "BPE token {} is empty", id);
    const uint64_t h = hash_bytes(bytes);
    size_t slot = h & (capacity - 1);
    while (token_slots_[slot].id >= 0) {
      check(token_bytes(token_slots_[slot].id) != bytes, "BPE tokens {} and {} have the same bytes",
            token_slots_[slot].id, id);
      slot = (slot + 1) & (capacity - 1);
    }
    token_slots_[slot] = {head_of(bytes), static_cast<uint32_t>(bytes.size()), id};
  }
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    byte_ids_[b] = find(std::string_view(&c, 1));
    check(byte_ids_[b] >= 0, "BPE vocabulary has no token for byte 0x{:02X}: every byte needs one", b);
  }
}

int32_t BpeModel::find(std::string_view bytes) const {
  if (token_slots_.empty()) return -1;
  const uint64_t head = head_of(bytes);
  const size_t mask = token_slots_.size() - 1;
  for (size_t slot = hash_bytes(bytes) & mask;; slot = (slot + 1) & mask) {
    const TokenSlot& s = token_slots_[slot];
    if (s.id < 0) return -1;
    if (s.head == head && s.length == bytes.size() &&
        (bytes.size() <= 8 ||
         std::memcmp(bytes_.data() + offsets_[s.id] + 8, bytes.data() + 8, bytes.size() - 8) == 0)) {
      return s.id;
    }
  }
}

void BpeModel::index_pairs(std::span<const Merge> merges) {
  // Pairs with equal ranks must stay equal (tiktoken: every split of a token has the token's
  // rank; ties go to the leftmost pair), so ranks are kept as given, below 2^30.
  const size_t capacity = table_capacity(merges.size());
  pair_slots_.assign(capacity, kEmptySlot);
  merged_by_rank_.clear();
  for (const Merge& m : merges) {
    check(m.left >= 0 && m.left < size() && m.right >= 0 && m.right < size() && m.merged >= 0 &&
              m.merged < size() && m.rank >= 0 && m.rank < (1 << 30),
          "merge ({}, {}) -> {} at rank {} uses an id outside the vocabulary or a bad rank",
          m.left, m.right, m.merged, m.rank);
    if (merged_by_rank_.size() <= static_cast<size_t>(m.rank)) {
      merged_by_rank_.resize(m.rank + 1, -1);
    }
    int32_t& merged = merged_by_rank_[m.rank];
    check(merged < 0 || merged == m.merged, "merges of rank {} make different tokens", m.rank);
    merged = m.merged;
    const uint64_t key = pair_key(m.left, m.right);
    size_t slot = mix(key) & (capacity - 1);
    while (pair_slots_[slot] != kEmptySlot && (pair_slots_[slot] & kKeyMask) != key) {
      slot = (slot + 1) & (capacity - 1);
    }
    if (pair_slots_[slot] != kEmptySlot) {  // a repeated pair keeps its lowest rank
      if ((pair_slots_[slot] >> (2 * kIdBits)) <= static_cast<uint64_t>(m.rank)) continue;
    }
    pair_slots_[slot] = (static_cast<uint64_t>(m.rank) << (2 * kIdBits)) | key;
  }
  byte_pair_ranks_.assign(256 * 256, -1);
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) byte_pair_ranks_[a * 256 + b] = pair_rank(byte_ids_[a], byte_ids_[b]);
  }
}

int32_t BpeModel::pair_rank(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  const size_t mask = pair_slots_.size() - 1;
  for (size_t slot = mix(key) & mask;; slot = (slot + 1) & mask) {
    const PairSlot s = pair_slots_[slot];
    if ((s & kKeyMask) == key) return static_cast<int32_t>(s >> (2 * kIdBits));
    if (s == kEmptySlot) return -1;
  }
}

std::vector<BpeModel::Merge> BpeModel::merges() const {
  std::vector<Merge> out;
  const uint64_t id_mask = (uint64_t{1} << kIdBits) - 1;
  for (const PairSlot s : pair_slots_) {
    if (s == kEmptySlot) continue;
    const auto rank = static_cast<int32_t>(s >> (2 * kIdBits));
    out.push_back({static_cast<int32_t>((s >> kIdBits) & id_mask), static_cast<int32_t>(s & id_mask),
                   rank, merged_id(rank)});
  }
  std::sort(out.begin(), out.end(), [](const Merge& a, const Merge& b) {
    return std::tie(a.rank, a.left, a.right) < std::tie(b.rank, b.left, b.right);
  });
  return out;
}

BpeModel BpeModel::from_ranks(std::vector<std::string> tokens) {
  BpeModel model(std::move(tokens));
  std::vector<Merge> merges;
  merges.reserve(static_cast<size_t>(model.size()) * 2);
  for (int32_t id = 0; id < model.size(); ++id) {
    const std::string_view bytes = model.token_bytes(id);
    for (size_t cut = 1; cut < bytes.size(); ++cut) {
      const int32_t left = model.find(bytes.substr(0, cut));
      if (left < 0) continue;
      const int32_t right = model.find(bytes.substr(cut));
      if (right >= 0) merges.push_back({left, right, id, id});
    }
  }
  model.index_pairs(merges);
  return model;
}

BpeModel BpeModel::from_merges(std::vector<std::string> tokens, std::span<const Merge> merges,
                               bool whole_piece_lookup) {
  BpeModel model(std::move(tokens));
  model.whole_piece_lookup_ = whole_piece_lookup;
  model.index_pairs(merges);
  return model;
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  if (whole_piece_lookup_) {
    const int32_t id = find(piece);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (piece.size() <= kSmallPiece) {
    merge_small(piece, out);
  } else {
    merge_heap(piece, out);
  }
}

void BpeModel::merge_small(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() > kSmallPiece) {
    merge_heap(piece, out);
    return;
  }
  // ids[i] is part i; rank[i] is the rank of the pair (part i, part i+1).
  std::array<int32_t, kSmallPiece> ids, rank;
  for (size_t i = 0; i < piece.size(); ++i) ids[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
  auto score = [&](size_t i) {
    const int32_t r = pair_rank(ids[i], ids[i + 1]);
    rank[i] = r < 0 ? kNoRank : r;
  };
  size_t count = piece.size();
  const auto* bytes = reinterpret_cast<const unsigned char*>(piece.data());
  for (size_t i = 0; i + 1 < count; ++i) {
    const int32_t r = byte_pair_ranks_[bytes[i] * 256 + bytes[i + 1]];
    rank[i] = r < 0 ? kNoRank : r;
  }
  while (count > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < count; ++i) {
      if (rank[i] < rank[best]) best = i;
    }
    if (rank[best] == kNoRank) break;
    ids[best] = merged_id(rank[best]);
    for (size_t i = best + 1; i + 1 < count; ++i) {
      ids[i] = ids[i + 1];
      rank[i] = rank[i + 1];
    }
    --count;
    if (best > 0) score(best - 1);
    if (best + 1 < count) score(best);
  }
  out.insert(out.end(), ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(count));
}

void BpeModel::merge_heap(std::string_view piece, std::vector<int32_t>& out) const {
  // A doubly linked list of parts, each named by the index of its first byte (which a part
  // keeps as it absorbs its right neighbour), and a min-heap of candidate pairs ordered by
  // (rank, position): the same choice as the quadratic scan. Entries go stale when a neighbour
  // merges; a stale entry no longer matches the ids in the list and is skipped.
  const int32_t n = static_cast<int32_t>(piece.size());
  std::vector<int32_t> ids(n), prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    ids[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank, pos, left, right;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int32_t pos) {
    const int32_t right = next[pos];
    if (right < 0) return;
    const int32_t rank = pair_rank(ids[pos], ids[right]);
    if (rank >= 0) heap.push({rank, pos, ids[pos], ids[right]});
  };
  const auto* bytes = reinterpret_cast<const unsigned char*>(piece.data());
  for (int32_t i = 0; i + 1 < n; ++i) {
    const int32_t rank = byte_pair_ranks_[bytes[i] * 256 + bytes[i + 1]];
    if (rank >= 0) heap.push({rank, i, ids[i], ids[i + 1]});
  }
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int32_t right = next[c.pos];
    if (ids[c.pos] != c.left || right < 0 || ids[right] != c.right) continue;  // stale
    ids[c.pos] = merged_id(c.rank);
    ids[right] = -1;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    if (prev[c.pos] >= 0) push(prev[c.pos]);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(ids[i]);
}

}  // namespace llama3::tokenizer
