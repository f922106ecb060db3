#include "runtime/sampler.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/error.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace llama3::runtime {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Top-k selection buffer, in multiples of k (see Sampler::select_top_k).
constexpr size_t kBufferFactor = 4;
// A nucleus boundary group at most this big is simply sorted; a bigger one is narrowed first
// by mass histograms (see Sampler::narrow_nucleus), so top_p never sorts the whole vocabulary.
constexpr size_t kSortLimit = 256;
constexpr int kBuckets = 256;
constexpr int kMaxRounds = 4;  // histogram rounds before sorting whatever is left (ties)
// First histogram over x = (logit - max) / T: buckets of 1/8 over (-32, 0], the last one also
// takes everything lower (exp(-32) ~ 1e-14: far below any useful top_p margin).
constexpr float kFirstRange = 32.0f;
constexpr int kNearBuckets = 64;  // x > -8: where the first round looks first
// Below this x the weight is flushed to exactly 0 (exp(-87) ~ 1.6e-38, near float's smallest).
constexpr float kMinExponent = -87.0f;
// Blocks of weights summed together, so a full-vocabulary draw scans one block, not the row.
constexpr size_t kBlock = 1024;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

[[noreturn]] void bad_logit(size_t index, float value) {
  fail("sampler: logit {} is {} (the model produced a non-finite value)", index,
       std::isnan(value) ? "NaN" : "+inf");
}

// The order of candidates: higher logit first, then lower token id, so every selection and sort
// below has one well-defined result whatever the algorithm.
constexpr auto ranks_above = [](const auto& a, const auto& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
};

// exp(x) for x <= 0 (x may be -inf): Cody-Waite reduction to r in [-ln2/2, ln2/2], degree-6
// Taylor polynomial (relative error < 3e-7), x < kMinExponent flushed to 0. Written out rather
// than calling std::exp so the SSE2 and scalar forms below do the same float operations in the
// same order (bit-identical weights), and so the weights do not depend on the libm version.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;  // 9 significant bits: n * kLn2Hi is exact
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
constexpr float kC6 = 1.0f / 720, kC5 = 1.0f / 120, kC4 = 1.0f / 24, kC3 = 1.0f / 6, kC2 = 0.5f;

float exp_nonpositive(float x) {
  if (!(x >= kMinExponent)) return 0.0f;
  const float n = (x * kLog2e + kRoundMagic) - kRoundMagic;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = kC6;
  p = p * r + kC5;
  p = p * r + kC4;
  p = p * r + kC3;
  p = p * r + kC2;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 0]
  return p * std::bit_cast<float>(bits);
}

// Histogram bucket of x within a range ending at x_hi; anything below the range goes to the
// last bucket, anything above (rounding) to the first.
int bucket_of(float x, float x_hi, float inv_width) {
  const float p = (x_hi - x) * inv_width;
  if (!(p < static_cast<float>(kBuckets - 1))) return kBuckets - 1;
  return p > 0.0f ? static_cast<int>(p) : 0;
}

// Calls visit(i, v) for every logit v at index >= begin with v > floor, where `floor` is read
// again after each visit (the visitor raises it). Throws on NaN or +inf anywhere in the scan.
// The SSE2 path tests 16 logits at a time and looks at them one by one only when one of them
// beats the floor or is bad, which after the first few blocks is rare.
template <typename Visit>
void scan_above(std::span<const float> logits, size_t begin, const float& floor, Visit&& visit) {
  size_t i = begin;
  const auto scalar = [&](size_t j) {
    const float v = logits[j];
    if (!(v < kInf)) bad_logit(j, v);  // catches NaN and +inf in one comparison
    if (v > floor) visit(j, v);
  };
#if defined(__SSE2__)
  const __m128 inf = _mm_set1_ps(kInf);
  for (; i + 16 <= logits.size(); i += 16) {
    const float* p = logits.data() + i;
    const __m128 a = _mm_loadu_ps(p), b = _mm_loadu_ps(p + 4);
    const __m128 c = _mm_loadu_ps(p + 8), d = _mm_loadu_ps(p + 12);
    const __m128 f = _mm_set1_ps(floor);
    const __m128 bad = _mm_or_ps(_mm_or_ps(_mm_cmpnlt_ps(a, inf), _mm_cmpnlt_ps(b, inf)),
                                 _mm_or_ps(_mm_cmpnlt_ps(c, inf), _mm_cmpnlt_ps(d, inf)));
    const __m128 above = _mm_or_ps(_mm_or_ps(_mm_cmpgt_ps(a, f), _mm_cmpgt_ps(b, f)),
                                   _mm_or_ps(_mm_cmpgt_ps(c, f), _mm_cmpgt_ps(d, f)));
    if (_mm_movemask_ps(_mm_or_ps(bad, above)) == 0) continue;
    for (size_t j = i; j < i + 16; ++j) scalar(j);
  }
#endif
  for (; i < logits.size(); ++i) scalar(i);
}

// Index and value of the largest logit (lowest index on ties); validates the whole row.
std::pair<size_t, float> find_max(std::span<const float> logits) {
  float best = -kInf;
  size_t best_index = 0;
  scan_above(logits, 0, best, [&](size_t i, float v) {
    best = v;
    best_index = i;
  });
  check(best > -kInf, "sampler: every logit is -inf");
  return {best_index, best};
}

// weights[i] = exp((logits[i] - max) * inv_t) and buckets[i] = first-histogram bucket of that x
// for i < count; returns the sum of the weights.
double weigh_block(const float* logits, float* weights, uint8_t* buckets, size_t count,
                   float max_logit, float inv_t) {
  const float inv_width = kBuckets / kFirstRange;
  size_t i = 0;
  double sum = 0.0;
#if defined(__SSE2__)
  const __m128 vmax = _mm_set1_ps(max_logit), vt = _mm_set1_ps(inv_t);
  const __m128 vmin = _mm_set1_ps(kMinExponent), vmagic = _mm_set1_ps(kRoundMagic);
  const __m128 vwidth = _mm_set1_ps(inv_width), vlast = _mm_set1_ps(kBuckets - 1);
  const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f);
  __m128d acc_lo = _mm_setzero_pd(), acc_hi = _mm_setzero_pd();  // in double: sums stay exact
  for (; i + 4 <= count; i += 4) {
    const __m128 x = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(logits + i), vmax), vt);
    // Same operations as exp_nonpositive, lane-wise.
    const __m128 valid = _mm_cmpge_ps(x, vmin);
    const __m128 xc = _mm_max_ps(x, vmin);  // keeps the flushed lanes' arithmetic finite
    const __m128 n = _mm_sub_ps(_mm_add_ps(_mm_mul_ps(xc, _mm_set1_ps(kLog2e)), vmagic), vmagic);
    const __m128 r = _mm_sub_ps(_mm_sub_ps(xc, _mm_mul_ps(n, _mm_set1_ps(kLn2Hi))),
                                _mm_mul_ps(n, _mm_set1_ps(kLn2Lo)));
    __m128 p = _mm_set1_ps(kC6);
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(kC5));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(kC4));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(kC3));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(kC2));
    p = _mm_add_ps(_mm_mul_ps(p, r), one);
    p = _mm_add_ps(_mm_mul_ps(p, r), one);
    const __m128i e = _mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127)), 23);
    const __m128 w = _mm_and_ps(_mm_mul_ps(p, _mm_castsi128_ps(e)), valid);
    _mm_storeu_ps(weights + i, w);
    acc_lo = _mm_add_pd(acc_lo, _mm_cvtps_pd(w));
    acc_hi = _mm_add_pd(acc_hi, _mm_cvtps_pd(_mm_movehl_ps(w, w)));
    // Same operations as bucket_of(x, 0, inv_width); NaN-free since x is -inf at worst.
    const __m128 pos = _mm_min_ps(_mm_max_ps(_mm_mul_ps(_mm_sub_ps(zero, x), vwidth), zero), vlast);
    const __m128i bucket = _mm_cvttps_epi32(pos);
    const __m128i packed = _mm_packus_epi16(_mm_packs_epi32(bucket, bucket), bucket);
    const int32_t four = _mm_cvtsi128_si32(packed);
    std::memcpy(buckets + i, &four, 4);
  }
  alignas(16) double lanes[2];
  _mm_store_pd(lanes, _mm_add_pd(acc_lo, acc_hi));
  sum = lanes[0] + lanes[1];
#endif
  for (; i < count; ++i) {
    const float x = (logits[i] - max_logit) * inv_t;
    weights[i] = exp_nonpositive(x);
    buckets[i] = static_cast<uint8_t>(bucket_of(x, 0.0f, inv_width));
    sum += weights[i];
  }
  return sum;
}

// Calls fn(i) for every i with buckets[i] <= max_bucket, in increasing i. Most of a row usually
// lies far below the nucleus: SSE2 skips 16 buckets at a time when none qualifies.
template <typename Fn>
void for_each_at_most(std::span<const uint8_t> buckets, int max_bucket, Fn&& fn) {
  size_t i = 0;
#if defined(__SSE2__)
  if (max_bucket < kBuckets - 1) {
    const __m128i limit = _mm_set1_epi8(static_cast<char>(max_bucket));
    for (; i + 16 <= buckets.size(); i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(buckets.data() + i));
      const int mask = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, limit), v));
      for (int bits = mask; bits != 0; bits &= bits - 1) fn(i + std::countr_zero(
                                                              static_cast<unsigned>(bits)));
    }
  }
#endif
  for (; i < buckets.size(); ++i) {
    if (buckets[i] <= max_bucket) fn(i);
  }
}

const char* type_name(const nlohmann::json& v) { return v.type_name(); }

}  // namespace

Xoshiro256::Xoshiro256(uint64_t seed) {
  for (auto& word : s_) word = splitmix64(seed);
}

uint64_t Xoshiro256::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void validate_sampling_params(const SamplingParams& params) {
  check(std::isfinite(params.temperature) && params.temperature >= 0.0f,
        "sampling params: 'temperature' must be a finite number >= 0, got {}", params.temperature);
  check(params.top_p > 0.0f && params.top_p <= 1.0f,
        "sampling params: 'top_p' must be in (0, 1], got {}", params.top_p);
  check(params.top_k >= 0, "sampling params: 'top_k' must be >= 0 (0 = no limit), got {}",
        params.top_k);
}

SamplingParams parse_sampling_params(std::string_view json) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    fail("sampling params: invalid JSON: {}", e.what());
  }
  check(doc.is_object(), "sampling params: expected a JSON object, got {}", type_name(doc));
  SamplingParams params;
  for (const auto& [key, value] : doc.items()) {
    if (key == "temperature" || key == "top_p") {
      check(value.is_number(), "sampling params: '{}' must be a number, got {}", key,
            value.dump());
      (key == "temperature" ? params.temperature : params.top_p) = value.get<float>();
    } else if (key == "top_k") {
      check(value.is_number_integer(), "sampling params: 'top_k' must be an integer, got {}",
            value.dump());
      check(value.is_number_unsigned() && value.get<uint64_t>() <= INT_MAX,
            "sampling params: 'top_k' must be in [0, {}], got {}", INT_MAX, value.dump());
      params.top_k = value.get<int>();
    } else if (key == "seed") {
      check(value.is_number_unsigned(),
            "sampling params: 'seed' must be an integer in [0, 2^64), got {}", value.dump());
      params.seed = value.get<uint64_t>();
    } else {
      fail("sampling params: unknown key '{}' (expected temperature, top_p, top_k, seed)", key);
    }
  }
  validate_sampling_params(params);
  return params;
}

Sampler::Sampler(const SamplingParams& params, uint64_t user_stream)
    : params_(params), rng_([&] {
        // Hash the seed, offset by the stream, hash again: for one seed, distinct streams get
        // distinct generator seeds (splitmix64's finalizer is a bijection).
        uint64_t state = params.seed;
        state = splitmix64(state) + user_stream;
        return splitmix64(state);
      }()) {
  validate_sampling_params(params_);
  // A temperature so small that 1/T overflows is greedy for every practical purpose, and
  // multiplying by an infinite 1/T would turn the top logit's 0 into NaN.
  inv_t_ = params_.temperature > 0.0f ? 1.0f / params_.temperature : kInf;
  greedy_ = params_.top_k == 1 || !(inv_t_ < kInf);
}

void Sampler::check_row(std::span<const float> logits) const {
  check(!logits.empty(), "sampler: empty logits row");
  check(logits.size() <= static_cast<size_t>(INT32_MAX), "sampler: logits row too long ({})",
        logits.size());
}

bool Sampler::full_vocab(size_t n) const {
  return params_.top_k == 0 || static_cast<size_t>(params_.top_k) >= n;
}

int32_t Sampler::sample(std::span<const float> logits) {
  check_row(logits);
  // One draw per call whatever the path, so the stream position is the token position.
  const double u = rng_.next_double();
  if (greedy_) return static_cast<int32_t>(find_max(logits).first);
  // (Selection may reallocate candidates_: take the size first, then the span.)
  if (!full_vocab(logits.size())) {
    const size_t size = select_top_k(logits);
    return draw(std::span(candidates_).first(size), u);
  }
  const double mass = weigh_full_vocab(logits);
  if (params_.top_p < 1.0f) {
    const size_t size = select_full_vocab_nucleus(logits, mass);
    return draw(std::span(candidates_).first(size), u);
  }
  // Plain softmax draw over the row: find the block holding the target mass, then the token.
  double r = u * mass;
  size_t b = 0;
  while (b + 1 < block_mass_.size() && r >= block_mass_[b]) r -= block_mass_[b++];
  const size_t begin = b * kBlock, end = std::min(logits.size(), begin + kBlock);
  double cumulative = 0.0;
  for (size_t i = begin; i < end; ++i) {
    cumulative += weights_[i];
    if (r < cumulative) return static_cast<int32_t>(i);
  }
  for (size_t i = end; i-- > 0;) {  // rounding left r at the very end: last possible token
    if (weights_[i] > 0.0f) return static_cast<int32_t>(i);
  }
  fail("sampler: no token has a positive probability");
}

std::vector<TokenProbability> Sampler::distribution(std::span<const float> logits) {
  check_row(logits);
  std::vector<TokenProbability> result;
  if (greedy_) {
    result.push_back({static_cast<int32_t>(find_max(logits).first), 1.0});
    return result;
  }
  size_t size = 0;
  if (!full_vocab(logits.size())) {
    size = select_top_k(logits);
  } else {
    const double mass = weigh_full_vocab(logits);
    if (params_.top_p >= 1.0f) {
      for (size_t i = 0; i < logits.size(); ++i) {
        if (weights_[i] > 0.0f) result.push_back({static_cast<int32_t>(i), weights_[i] / mass});
      }
      return result;
    }
    size = select_full_vocab_nucleus(logits, mass);
  }
  const auto nucleus = std::span(candidates_).first(size);
  double total = 0.0;
  for (const auto& c : nucleus) total += c.weight;
  for (const auto& c : nucleus) {
    if (c.weight > 0.0f) result.push_back({c.id, c.weight / total});
  }
  return result;
}

size_t Sampler::select_top_k(std::span<const float> logits) {
  const size_t k = static_cast<size_t>(params_.top_k);
  // Collect every logit above a floor into a buffer; when the buffer is full keep its k best
  // (nth_element) and raise the floor to the worst of them. On a row in no particular order only
  // ~k ln(n/k) logits pass the floor, so this is one vectorized scan plus a few small selections
  // (a heap would do the same with a mispredicted branch per level per insertion).
  const size_t capacity = std::min(logits.size(), kBufferFactor * k);
  candidates_.clear();
  candidates_.reserve(capacity);
  const auto keep_best_k = [&] {
    const auto kth = candidates_.begin() + static_cast<ptrdiff_t>(k) - 1;
    std::nth_element(candidates_.begin(), kth, candidates_.end(), ranks_above);
    candidates_.resize(k);
  };
  float floor = -kInf;  // -inf logits never enter: they could not be drawn anyway
  scan_above(logits, 0, floor, [&](size_t i, float v) {
    candidates_.push_back({v, 0.0f, static_cast<int32_t>(i)});
    if (candidates_.size() == capacity && capacity > k) {
      keep_best_k();
      // Later tokens with this same logit have higher ids, so they rank below the kept ones:
      // scan_above's strict > floor is exactly right.
      floor = candidates_[k - 1].logit;
    }
  });
  if (candidates_.size() > k) keep_best_k();
  // In rank order: nth_element leaves the kept k in an order that depends on the rest of the
  // row, and the draw scans them in order. Sorted, the token drawn depends only on the top k,
  // so a row holding just those (a mesh's gathered candidates) draws the same token.
  std::sort(candidates_.begin(), candidates_.end(), ranks_above);
  float max_logit = -kInf;
  for (const auto& c : candidates_) max_logit = std::max(max_logit, c.logit);
  check(max_logit > -kInf, "sampler: every logit is -inf");
  double mass = 0.0;
  for (auto& c : candidates_) {
    c.weight = exp_nonpositive((c.logit - max_logit) * inv_t_);
    mass += c.weight;
  }
  if (params_.top_p >= 1.0f) return candidates_.size();
  return narrow_nucleus(0, 0.0, params_.top_p * mass, max_logit);
}

double Sampler::weigh_full_vocab(std::span<const float> logits) {
  max_logit_ = find_max(logits).second;
  const size_t n = logits.size();
  weights_.resize(n);
  buckets_.resize(n);
  block_mass_.resize((n + kBlock - 1) / kBlock);
  double mass = 0.0;
  for (size_t b = 0; b < block_mass_.size(); ++b) {
    const size_t begin = b * kBlock, count = std::min(kBlock, n - begin);
    block_mass_[b] = weigh_block(logits.data() + begin, weights_.data() + begin,
                                 buckets_.data() + begin, count, max_logit_, inv_t_);
    mass += block_mass_[b];
  }
  return mass;
}

size_t Sampler::select_full_vocab_nucleus(std::span<const float> logits, double mass) {
  // First histogram round over the whole row, on the buckets weigh_block stored. The nucleus
  // usually ends within a few units of x of the top, so histogram only the buckets above
  // kNearBuckets first; only if they do not reach the target (a flat row) histogram them all.
  const double target = params_.top_p * mass;
  const auto find_boundary = [&](int limit) {
    // Four interleaved histograms, so additions to one bucket do not wait on each other.
    std::array<std::array<double, kBuckets>, 4> histograms{};
    for_each_at_most(buckets_, limit - 1, [&](size_t i) {
      histograms[i & 3][buckets_[i]] += weights_[i];
    });
    double cumulative = 0.0;
    for (int b = 0; b < limit; ++b) {
      cumulative += (histograms[0][b] + histograms[1][b]) + (histograms[2][b] + histograms[3][b]);
      if (cumulative >= target) return b;
    }
    return -1;
  };
  int boundary = find_boundary(kNearBuckets);
  if (boundary < 0) boundary = find_boundary(kBuckets);
  if (boundary < 0) boundary = kBuckets - 1;  // rounding: keep every bucket
  // Buckets before the boundary are in the nucleus for sure; the boundary bucket is resolved by
  // narrow_nucleus. Gather both as candidates, certain ones first.
  candidates_.clear();
  boundary_.clear();
  double included_mass = 0.0;
  for_each_at_most(buckets_, boundary, [&](size_t i) {
    if (buckets_[i] < boundary) {
      candidates_.push_back({logits[i], weights_[i], static_cast<int32_t>(i)});
      included_mass += weights_[i];
    } else {
      boundary_.push_back({logits[i], weights_[i], static_cast<int32_t>(i)});
    }
  });
  const size_t included = candidates_.size();
  candidates_.insert(candidates_.end(), boundary_.begin(), boundary_.end());
  return narrow_nucleus(included, included_mass, target, max_logit_);
}

// candidates_[0, included) are certainly in the nucleus (mass `included_mass`); the rest is the
// boundary group. Narrows the group with histograms over its own range of x = (logit - max) / T
// until it is small, sorts it, and keeps the prefix that brings the mass to `target` (the
// nucleus is the shortest prefix of the ranked candidates reaching top_p of the mass).
// Returns the nucleus size: candidates_[0, size).
size_t Sampler::narrow_nucleus(size_t included, double included_mass, double target,
                               float max_logit) {
  size_t group_end = candidates_.size();
  for (int round = 0;; ++round) {
    const std::span<Candidate> group(candidates_.data() + included, group_end - included);
    float x_lo = 0.0f, x_hi = -kInf;
    if (group.size() > kSortLimit && round < kMaxRounds) {
      x_lo = kInf;
      for (const auto& c : group) {
        const float x = (c.logit - max_logit) * inv_t_;
        x_lo = std::min(x_lo, x);
        x_hi = std::max(x_hi, x);
      }
      x_lo = std::max(x_lo, kMinExponent);  // lower weights are flushed to 0 anyway
    }
    // Sort when the group is small, or cannot be split: all ties, or all of weight 0.
    const float range = x_hi - x_lo;
    if (!(range > 0.0f)) {
      std::sort(group.begin(), group.end(), ranks_above);
      size_t kept = 0;
      while (kept < group.size() && (included + kept == 0 || included_mass < target)) {
        included_mass += group[kept++].weight;
      }
      return included + kept;
    }
    const float inv_width = kBuckets / range;
    const auto bucket = [&](const Candidate& c) {
      return bucket_of((c.logit - max_logit) * inv_t_, x_hi, inv_width);
    };
    std::array<double, kBuckets> histogram{};
    for (const auto& c : group) histogram[bucket(c)] += c.weight;
    int boundary = kBuckets - 1;
    double cumulative = included_mass;
    for (int b = 0; b < kBuckets; ++b) {
      cumulative += histogram[b];
      if (cumulative >= target) {
        boundary = b;
        break;
      }
    }
    const auto certain = std::partition(group.begin(), group.end(),
                                        [&](const Candidate& c) { return bucket(c) < boundary; });
    const auto undecided = std::partition(
        certain, group.end(), [&](const Candidate& c) { return bucket(c) == boundary; });
    for (auto it = group.begin(); it != certain; ++it) included_mass += it->weight;
    included += static_cast<size_t>(certain - group.begin());
    group_end = included + static_cast<size_t>(undecided - certain);
  }
}

int32_t Sampler::draw(std::span<const Candidate> nucleus, double u) const {
  double total = 0.0;
  for (const auto& c : nucleus) total += c.weight;
  const double r = u * total;
  double cumulative = 0.0;
  for (const auto& c : nucleus) {
    cumulative += c.weight;
    if (r < cumulative) return c.id;
  }
  // Only reachable through rounding when u is within an ulp of 1: the last token that can win.
  for (size_t i = nucleus.size(); i-- > 0;) {
    if (nucleus[i].weight > 0.0f) return nucleus[i].id;
  }
  fail("sampler: no token has a positive probability");
}

}  // namespace llama3::runtime
