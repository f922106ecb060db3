#include "model/rope.h"

#include <cmath>
#include <numbers>

namespace llama3::model {

std::vector<double> rope_frequencies(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<double> freqs(static_cast<size_t>(half));
  const RopeScaling& s = c.rope_scaling;
  const double low_wavelen = static_cast<double>(s.original_max_position) / s.low_freq_factor;
  const double high_wavelen = static_cast<double>(s.original_max_position) / s.high_freq_factor;
  for (int64_t i = 0; i < half; ++i) {
    double f = std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim));
    if (!c.rope_freq_divisors.empty()) {
      f /= c.rope_freq_divisors[static_cast<size_t>(i)];
    } else if (s.enabled) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (static_cast<double>(s.original_max_position) / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
    freqs[static_cast<size_t>(i)] = f;
  }
  return freqs;
}

void rope_cos_sin(const std::vector<double>& freqs, int64_t pos, float* cos, float* sin) {
  for (size_t i = 0; i < freqs.size(); ++i) {
    const double angle = static_cast<double>(pos) * freqs[i];
    cos[i] = static_cast<float>(std::cos(angle));
    sin[i] = static_cast<float>(std::sin(angle));
  }
}

}  // namespace llama3::model
