#include "runtime/logit_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace llama3::runtime {

std::vector<float> log_softmax(std::span<const float> logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double log_z = max + std::log(sum);
  std::vector<float> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<float>(static_cast<double>(logits[i]) - log_z);
  return out;
}

std::vector<int32_t> top_k_ids(std::span<const float> logits, int k) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  const auto n = static_cast<std::ptrdiff_t>(std::min<size_t>(static_cast<size_t>(k), ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  });
  ids.resize(static_cast<size_t>(n));
  return ids;
}

ReferencePosition reference_position(std::span<const float> logits) {
  check(!logits.empty(), "reference_position: empty logits");
  return {log_softmax(logits), top_k_ids(logits, 1).front()};
}

void LogitComparison::add(const ReferencePosition& ref, std::span<const float> logits, int32_t next_token) {
  check(ref.log_probs.size() == logits.size(), "logit comparison: {} reference logits vs {}", ref.log_probs.size(),
        logits.size());
  const std::vector<int32_t> top5 = top_k_ids(logits, 5);
  ++positions;
  top1_agree += top5.front() == ref.top1;
  top5_agree += std::find(top5.begin(), top5.end(), ref.top1) != top5.end();
  if (next_token >= 0) {
    text_top1 += top5.front() == next_token;
    text_top5 += std::find(top5.begin(), top5.end(), next_token) != top5.end();
  }
  const std::vector<float> lp = log_softmax(logits);
  double kl = 0.0;
  for (size_t i = 0; i < lp.size(); ++i) {
    const double p = std::exp(static_cast<double>(ref.log_probs[i]));
    kl += p * (static_cast<double>(ref.log_probs[i]) - static_cast<double>(lp[i]));
  }
  kld.push_back(std::max(kl, 0.0));  // rounding can leave -1e-12 for identical distributions
  reference_top1_prob_sum += std::exp(static_cast<double>(ref.log_probs[static_cast<size_t>(ref.top1)]));
}

namespace {
double ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }
}  // namespace

double LogitComparison::top1() const { return ratio(top1_agree, positions); }
double LogitComparison::top5() const { return ratio(top5_agree, positions); }
double LogitComparison::text_top1_rate() const { return ratio(text_top1, positions); }
double LogitComparison::text_top5_rate() const { return ratio(text_top5, positions); }

double LogitComparison::mean_kld() const {
  return kld.empty() ? 0.0 : std::accumulate(kld.begin(), kld.end(), 0.0) / static_cast<double>(kld.size());
}

double LogitComparison::kld_percentile(double p) const {
  if (kld.empty()) return 0.0;
  std::vector<double> sorted = kld;
  std::sort(sorted.begin(), sorted.end());
  // Nearest rank, as llama.cpp's percentiles of the KLD distribution.
  const double rank = std::clamp(p / 100.0, 0.0, 1.0) * static_cast<double>(sorted.size() - 1);
  return sorted[static_cast<size_t>(std::lround(rank))];
}

double LogitComparison::reference_mean_top1_prob() const {
  return positions > 0 ? reference_top1_prob_sum / static_cast<double>(positions) : 0.0;
}

}  // namespace llama3::runtime
