#pragma once
// Statistics that compare a model's next-token distributions with a reference's, position by
// position, as llama.cpp's `llama-perplexity --kl-divergence` reports them (so figures compare):
// top-1 agreement, top-5 agreement (the reference's top-1 within the model's top-5), the
// KL divergence KL(reference || model) per position with its mean and 99th percentile, and the
// reference's mean top-1 probability (near 1/vocab means near-uniform logits, where agreement
// says little).
#include <cstdint>
#include <span>
#include <vector>

namespace llama3::runtime {

// One position's reference distribution, kept compactly: log-probabilities of every token.
struct ReferencePosition {
  std::vector<float> log_probs;
  int32_t top1 = 0;
};

ReferencePosition reference_position(std::span<const float> logits);

struct LogitComparison {
  int64_t positions = 0;
  int64_t top1_agree = 0;
  int64_t top5_agree = 0;
  std::vector<double> kld;  // per position
  double reference_top1_prob_sum = 0.0;
  // Against the text's own next tokens (real weights): model's top-1 / top-5 hits.
  int64_t text_top1 = 0;
  int64_t text_top5 = 0;

  void add(const ReferencePosition& ref, std::span<const float> logits, int32_t next_token);
  double top1() const;  // fractions in [0, 1]
  double top5() const;
  double mean_kld() const;
  double kld_percentile(double p) const;  // p in [0, 100]
  double reference_mean_top1_prob() const;
  double text_top1_rate() const;
  double text_top5_rate() const;
};

// Log-softmax in double (then stored as float): stable for logits of any scale.
std::vector<float> log_softmax(std::span<const float> logits);
// The ids of the k largest logits, largest first (ties: the lower id first).
std::vector<int32_t> top_k_ids(std::span<const float> logits, int k);

}  // namespace llama3::runtime
