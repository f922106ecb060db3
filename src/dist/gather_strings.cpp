#include "dist/gather_strings.h"

#include <algorithm>
#include <cstdint>

namespace llama3::dist {

std::vector<std::string> all_gather_strings(Communicator& group, const std::string& mine) {
  const auto n = static_cast<size_t>(group.size());
  const uint64_t length = mine.size();
  std::vector<uint64_t> lengths(n);
  group.all_gather(std::as_bytes(std::span(&length, 1)), std::as_writable_bytes(std::span(lengths)));
  const uint64_t longest = std::max<uint64_t>(*std::max_element(lengths.begin(), lengths.end()), 1);
  std::string padded = mine;
  padded.resize(longest, '\0');
  std::string all(longest * n, '\0');
  group.all_gather(std::as_bytes(std::span(padded.data(), padded.size())),
                   std::as_writable_bytes(std::span(all.data(), all.size())));
  std::vector<std::string> out;
  for (size_t r = 0; r < n; ++r) out.push_back(all.substr(r * longest, lengths[r]));
  return out;
}

}  // namespace llama3::dist
