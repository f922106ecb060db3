#include "model/cross_attention_context.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace llama3::model {

CrossAttentionContext::Visibility CrossAttentionContext::at(int64_t pos) const {
  // The last entry starting at or before pos.
  auto it = std::upper_bound(visibility.begin(), visibility.end(), pos,
                             [](int64_t p, const Visibility& v) { return p < v.from; });
  if (it == visibility.begin()) return {pos, 0, 0};
  return *(it - 1);
}

std::vector<CrossAttentionContext::Visibility> image_visibility(std::span<const int64_t> image_positions,
                                                                std::span<const int64_t> image_tokens) {
  check(image_positions.size() == image_tokens.size(), "image visibility: {} positions for {} images",
        image_positions.size(), image_tokens.size());
  const size_t n = image_positions.size();
  if (n == 0) return {};
  constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
  struct Range {
    int64_t begin, end;
  };
  std::vector<Range> seen(n);
  for (size_t i = 0; i < n; ++i) {
    check(i == 0 || image_positions[i] > image_positions[i - 1], "image visibility: image positions must increase");
    seen[i] = {image_positions[i], i + 1 < n ? image_positions[i + 1] : kForever};
  }
  int64_t last_end = kForever;
  for (size_t i = n; i-- > 0;) {
    if (seen[i].begin == seen[i].end - 1) seen[i].end = last_end;  // a run of consecutive image tokens
    last_end = seen[i].end;
  }
  std::vector<int64_t> first_token(n + 1, 0);
  for (size_t i = 0; i < n; ++i) first_token[i + 1] = first_token[i] + image_tokens[i];
  // Breakpoints where the visible set can change; between two, the set is a run of images.
  std::vector<int64_t> points;
  for (const Range& r : seen) {
    points.push_back(r.begin);
    if (r.end != kForever) points.push_back(r.end);
  }
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  std::vector<CrossAttentionContext::Visibility> out;
  for (int64_t p : points) {
    size_t lo = n, hi = 0;
    for (size_t i = 0; i < n; ++i) {
      if (seen[i].begin <= p && p < seen[i].end) lo = std::min(lo, i), hi = std::max(hi, i + 1);
    }
    CrossAttentionContext::Visibility v{p, 0, 0};
    if (lo < hi) {
      for (size_t i = lo; i < hi; ++i) {
        check(seen[i].begin <= p && p < seen[i].end, "image visibility: the images seen at position {} are not a run", p);
      }
      v.key_begin = first_token[lo], v.key_end = first_token[hi];
    }
    if (!out.empty() && out.back().key_begin == v.key_begin && out.back().key_end == v.key_end) continue;
    out.push_back(v);
  }
  return out;
}

}  // namespace llama3::model
