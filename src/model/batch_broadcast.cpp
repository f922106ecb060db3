#include "model/batch_broadcast.h"

#include <array>

#include "core/error.h"

namespace llama3::model {
namespace {

// Header: a magic word (a follower reading garbage fails loudly, not silently), the item count
// (-1: stop), the payload's token and block-table lengths, the cache's id, blocks, block size
// and dtype, and the logit candidates rank 0 asks for.
constexpr int64_t kMagic = 0x4c33'6d65'7368;  // "L3mesh"
using Header = std::array<int64_t, 9>;
// Per item in the payload: tokens, start_pos, rope_offset, all_logits, block table length.
constexpr int64_t kItemFields = 5;

void broadcast_header(dist::Communicator& group, Header& h) { group.broadcast(std::as_writable_bytes(std::span(h)), 0); }

template <typename T>
void broadcast_vector(dist::Communicator& group, std::vector<T>& v) {
  if (!v.empty()) group.broadcast(std::as_writable_bytes(std::span(v)), 0);
}

}  // namespace

void broadcast_batch(dist::Communicator& group, const CacheShape& cache, std::span<const BatchItem> batch,
                     int64_t logit_candidates) {
  std::vector<int64_t> fields;
  std::vector<int32_t> tokens, tables;
  fields.reserve(batch.size() * kItemFields);
  for (const BatchItem& item : batch) {
    fields.insert(fields.end(), {static_cast<int64_t>(item.tokens.size()), item.start_pos, item.rope_offset,
                                 item.all_logits ? 1 : 0, static_cast<int64_t>(item.block_table.size())});
    tokens.insert(tokens.end(), item.tokens.begin(), item.tokens.end());
    tables.insert(tables.end(), item.block_table.begin(), item.block_table.end());
  }
  Header h{kMagic,         static_cast<int64_t>(batch.size()), static_cast<int64_t>(tokens.size()),
           static_cast<int64_t>(tables.size()), cache.id, cache.num_blocks, cache.block_size,
           static_cast<int64_t>(cache.dtype), logit_candidates};
  broadcast_header(group, h);
  broadcast_vector(group, fields);
  broadcast_vector(group, tokens);
  broadcast_vector(group, tables);
}

void broadcast_stop(dist::Communicator& group) {
  Header h{kMagic, -1, 0, 0, 0, 0, 0, 0, 0};
  broadcast_header(group, h);
}

bool receive_batch(dist::Communicator& group, ReceivedBatch& out) {
  Header h{};
  broadcast_header(group, h);
  check(h[0] == kMagic, "mesh: rank {} received a malformed batch header from rank 0", group.rank());
  if (h[1] < 0) return false;
  // The leader built these from a batch it could run; a follower trusts the sizes only as far
  // as they are consistent with each other.
  check(h[1] > 0 && h[2] >= h[1] && h[3] >= 0 && h[5] > 0 && h[6] > 0 && h[7] >= 0 && h[7] <= 2 && h[8] >= 0,
        "mesh: inconsistent batch header ({} items, {} tokens)", h[1], h[2]);
  out.cache = {h[4], h[5], h[6], static_cast<kernels::KvDType>(h[7])};
  out.logit_candidates = h[8];
  std::vector<int64_t> fields(static_cast<size_t>(h[1] * kItemFields));
  out.tokens.resize(static_cast<size_t>(h[2]));
  out.block_tables.resize(static_cast<size_t>(h[3]));
  broadcast_vector(group, fields);
  broadcast_vector(group, out.tokens);
  broadcast_vector(group, out.block_tables);
  out.items.clear();
  size_t t = 0, b = 0;
  for (int64_t i = 0; i < h[1]; ++i) {
    const int64_t* f = fields.data() + i * kItemFields;
    check(f[0] > 0 && f[4] >= 0 && t + static_cast<size_t>(f[0]) <= out.tokens.size() &&
              b + static_cast<size_t>(f[4]) <= out.block_tables.size(),
          "mesh: batch item {} does not fit the payload", i);
    BatchItem item;
    item.tokens = std::span<const int32_t>(out.tokens.data() + t, static_cast<size_t>(f[0]));
    item.start_pos = f[1];
    item.rope_offset = f[2];
    item.all_logits = f[3] != 0;
    item.block_table = std::span<const int32_t>(out.block_tables.data() + b, static_cast<size_t>(f[4]));
    t += static_cast<size_t>(f[0]);
    b += static_cast<size_t>(f[4]);
    out.items.push_back(item);
  }
  return true;
}

}  // namespace llama3::model
