#include "runtime/sampler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace llama3::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr size_t kLlamaVocab = 128256;

SamplingParams params(float temperature, int top_k, float top_p, uint64_t seed = 1) {
  return {temperature, top_p, top_k, seed};
}

// The sampling rule written the obvious way, in double: sort the whole row, cut, renormalize.
// `mass_before` gets, for every token kept by top-k, the fraction of the top-k mass ranked above
// it: the nucleus is the tokens whose mass_before is < top_p.
std::map<int32_t, double> reference(std::span<const float> logits, const SamplingParams& p,
                                    std::map<int32_t, double>* mass_before = nullptr) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > -kInf) order.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  if (p.top_k > 0 && order.size() > static_cast<size_t>(p.top_k)) order.resize(p.top_k);
  const double max = logits[order[0]];
  std::vector<double> w;
  for (int32_t id : order) w.push_back(std::exp((logits[id] - max) / p.temperature));
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  size_t kept = order.size();
  double cumulative = 0.0;
  for (size_t i = 0; i < order.size(); ++i) {
    if (mass_before) (*mass_before)[order[i]] = cumulative / total;
    cumulative += w[i];
    if (cumulative / total >= p.top_p && kept == order.size()) kept = i + 1;
  }
  const double kept_total = std::accumulate(w.begin(), w.begin() + kept, 0.0);
  std::map<int32_t, double> result;
  for (size_t i = 0; i < kept; ++i) result[order[i]] = w[i] / kept_total;
  return result;
}

std::vector<float> normal_row(size_t n, uint64_t seed, float spread, int peaks) {
  Xoshiro256 rng(seed);
  std::vector<float> row(n);
  for (auto& v : row) {
    const double u1 = 1.0 - rng.next_double(), u2 = rng.next_double();
    v = static_cast<float>(spread * std::sqrt(-2.0 * std::log(u1)) *
                           std::cos(6.283185307179586 * u2));
  }
  for (int i = 0; i < peaks; ++i) row[rng.next() % n] = 6.0f + static_cast<float>(i % 5);
  return row;
}

// Draws `draws` tokens and checks each expected token's count against draws * p within 5
// standard deviations of the binomial count, sqrt(draws p (1 - p)): a correct sampler fails
// one such comparison with probability ~6e-7. Tokens outside `expected` must never appear
// (callers give them probability below 1e-9 at most).
void expect_frequencies(Sampler& sampler, std::span<const float> logits,
                        const std::map<int32_t, double>& expected, int draws) {
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) counts[sampler.sample(logits)]++;
  for (const auto& [token, count] : counts) {
    EXPECT_TRUE(expected.count(token)) << "drew token " << token << " outside the expected set";
  }
  for (const auto& [token, p] : expected) {
    const double mean = draws * p, sigma = std::sqrt(draws * p * (1.0 - p));
    EXPECT_NEAR(counts[token], mean, 5.0 * sigma + 1e-9) << "token " << token << " p " << p;
  }
}

// A known distribution over six tokens, placed at scattered ids of a vocabulary of `vocab`
// (the other ids get logit -40: probability < 1e-12 in total for a 128k vocabulary).
struct Known {
  std::vector<float> logits;
  std::map<int32_t, double> p;  // id -> probability
};

Known known_distribution(size_t vocab) {
  const double probs[] = {0.4, 0.25, 0.15, 0.1, 0.06, 0.04};
  std::vector<int32_t> ids = {3, 0, 5, 1, 4, 2};
  if (vocab > 6) {
    // Spread across SIMD blocks and the scalar tail (vocab - 1 is never a multiple of 16 here).
    ids = {static_cast<int32_t>(vocab - 1), 17, static_cast<int32_t>(vocab / 2), 5000,
           static_cast<int32_t>(vocab - 6), 0};
  }
  Known k{std::vector<float>(vocab, -40.0f), {}};
  for (int i = 0; i < 6; ++i) {
    k.logits[ids[i]] = static_cast<float>(std::log(probs[i]));
    k.p[ids[i]] = probs[i];
  }
  return k;
}

// Keeps the `keep` most probable entries of `p` (already exact) and renormalizes, optionally
// raising probabilities to 1/T first.
std::map<int32_t, double> truncated(const std::map<int32_t, double>& p, size_t keep,
                                    double temperature = 1.0) {
  std::vector<std::pair<double, int32_t>> sorted;
  for (const auto& [id, prob] : p) sorted.push_back({std::pow(prob, 1.0 / temperature), id});
  std::sort(sorted.rbegin(), sorted.rend());
  sorted.resize(std::min(keep, sorted.size()));
  double total = 0.0;
  for (const auto& s : sorted) total += s.first;
  std::map<int32_t, double> result;
  for (const auto& [w, id] : sorted) result[id] = w / total;
  return result;
}

TEST(Xoshiro256, MatchesIndependentImplementation) {
  // Values from a separate Python transcription of splitmix64 seeding + xoshiro256**; the seed
  // 0 state starts with splitmix64's well-known first output 0xe220a8397b1dcdaf.
  Xoshiro256 a(0);
  EXPECT_EQ(a.next(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(a.next(), 0xbf6e1f784956452aULL);
  EXPECT_EQ(a.next(), 0x1a5f849d4933e6e0ULL);
  Xoshiro256 b(42);
  EXPECT_EQ(b.next(), 0x15780b2e0c2ec716ULL);
  EXPECT_EQ(b.next(), 0x6104d9866d113a7eULL);
  EXPECT_EQ(b.next(), 0xae17533239e499a1ULL);
}

TEST(Xoshiro256, DoublesAreInUnitInterval) {
  Xoshiro256 rng(7);
  double sum = 0.0;
  for (int i = 0; i < 100000; ++i) {
    const double u = rng.next_double();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // Mean of 1e5 uniforms: sd = sqrt(1/12 / 1e5) ~ 9.1e-4; 5 sd.
  EXPECT_NEAR(sum / 100000, 0.5, 5 * 9.1e-4);
}

TEST(Sampler, TemperatureZeroIsArgmaxWithLowestIndexOnTies) {
  Sampler sampler(params(0.0f, 32, 0.9f), 0);
  const std::vector<float> ties = {1.0f, 5.0f, 3.0f, 5.0f, -kInf};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sampler.sample(ties), 1);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto row = normal_row(kLlamaVocab - static_cast<size_t>(seed), seed, 3.0f, 0);
    const auto argmax = std::max_element(row.begin(), row.end()) - row.begin();
    EXPECT_EQ(sampler.sample(row), argmax);
  }
  // A tie between the very last element (scalar tail) and an earlier one.
  std::vector<float> tail(33, 0.0f);
  tail[32] = 2.0f;
  EXPECT_EQ(sampler.sample(tail), 32);
  tail[20] = 2.0f;
  EXPECT_EQ(sampler.sample(tail), 20);
}

TEST(Sampler, TopKOneIsArgmax) {
  Sampler sampler(params(1.0f, 1, 1.0f), 3);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto row = normal_row(1000 + 37 * seed, seed, 2.0f, 0);
    const auto argmax = std::max_element(row.begin(), row.end()) - row.begin();
    EXPECT_EQ(sampler.sample(row), argmax);
  }
}

TEST(Sampler, VanishingTemperatureIsGreedy) {
  // 1/T overflows float: the sampler must not produce NaN weights but pick the argmax.
  Sampler sampler(params(1e-40f, 0, 1.0f), 0);
  EXPECT_EQ(sampler.sample(std::vector<float>{0.5f, 0.7f, 0.6f}), 1);
}

TEST(Sampler, FrequenciesMatchSoftmaxOnSmallVocab) {
  const auto k = known_distribution(6);
  Sampler sampler(params(1.0f, 0, 1.0f), 0);
  expect_frequencies(sampler, k.logits, k.p, 100000);
}

TEST(Sampler, FrequenciesMatchTemperatureScaledSoftmax) {
  const auto k = known_distribution(6);
  Sampler sampler(params(0.5f, 0, 1.0f), 1);
  expect_frequencies(sampler, k.logits, truncated(k.p, 6, 0.5), 100000);
}

TEST(Sampler, FrequenciesMatchTopKRenormalized) {
  const auto k = known_distribution(6);
  Sampler sampler(params(1.0f, 3, 1.0f), 2);
  expect_frequencies(sampler, k.logits, truncated(k.p, 3), 100000);
}

TEST(Sampler, FrequenciesMatchNucleus) {
  // Cumulative 0.4, 0.65, 0.80: top_p 0.75 keeps exactly the three most probable tokens.
  const auto k = known_distribution(6);
  Sampler sampler(params(1.0f, 0, 0.75f), 3);
  expect_frequencies(sampler, k.logits, truncated(k.p, 3), 100000);
}

TEST(Sampler, TopPIsMeasuredWithinTopK) {
  // Top-2 renormalized: 0.4/0.65 = 0.615 >= 0.55, so only the best token survives. (Measured on
  // the full distribution, 0.4 < 0.55 would have kept two.)
  const auto k = known_distribution(6);
  Sampler sampler(params(1.0f, 2, 0.55f), 4);
  expect_frequencies(sampler, k.logits, truncated(k.p, 1), 1000);
}

TEST(Sampler, FrequenciesMatchOnLlamaVocabulary) {
  // The same distribution hidden in a 128256-entry row: exercises the SIMD scans, the top-k
  // buffer and the full-vocabulary paths. Fewer draws: each one scans the whole row.
  const auto k = known_distribution(kLlamaVocab);
  Sampler top_k(params(1.0f, 32, 0.75f), 5);
  expect_frequencies(top_k, k.logits, truncated(k.p, 3), 20000);
  Sampler nucleus(params(1.0f, 0, 0.75f), 6);
  expect_frequencies(nucleus, k.logits, truncated(k.p, 3), 2000);
  Sampler tempered(params(0.7f, 0, 0.9f), 7);
  const auto scaled = truncated(k.p, 6, 0.7);  // cumulative 0.500, 0.756, 0.879, 0.948: keep 4
  expect_frequencies(tempered, k.logits, truncated(scaled, 4), 2000);
}

TEST(Sampler, NeverDrawsMinusInfinity) {
  const std::vector<float> row = {-kInf, 0.0f, -kInf, 0.0f, -kInf};
  Sampler full(params(1.0f, 0, 1.0f), 0);
  Sampler top_k(params(1.0f, 4, 0.9f), 0);
  for (int i = 0; i < 2000; ++i) {
    const int32_t a = full.sample(row), b = top_k.sample(row);
    EXPECT_TRUE(a == 1 || a == 3) << a;
    EXPECT_TRUE(b == 1 || b == 3) << b;
  }
}

// distribution() against the reference. Tolerances: the sampler computes x = (logit - max) / T
// in float (relative error ~6e-8 of |x| <= 40: up to ~3e-6 absolute) and exp to 3e-7, where the
// reference is double throughout, so each weight may differ by a relative ~3e-6. Hence:
//  - the sets may differ only by tokens at the cut: whose reference mass_before is within 1e-5
//    of top_p (in a nearly flat row each token is ~1e-5 of the mass, so that can be a few);
//  - probabilities agree to a relative 1e-5, plus the renormalization change when the sets
//    differ by such tokens (their mass, bounded by the cut tolerance 1e-5 each, in total).
void expect_matches_reference(std::span<const float> row, const SamplingParams& p,
                              int* cut_differences) {
  std::map<int32_t, double> mass_before;
  const auto want = reference(row, p, &mass_before);
  Sampler sampler(p, 0);
  std::map<int32_t, double> got;
  double sum = 0.0;
  for (const auto& t : sampler.distribution(row)) {
    EXPECT_TRUE(got.emplace(t.token, t.probability).second) << "token listed twice " << t.token;
    sum += t.probability;
  }
  const std::string where = "vocab " + std::to_string(row.size()) + " T " +
                            std::to_string(p.temperature) + " k " + std::to_string(p.top_k) +
                            " p " + std::to_string(p.top_p);
  EXPECT_NEAR(sum, 1.0, 1e-9) << where;  // normalized in double
  double differing_mass = 0.0;
  using Map = std::map<int32_t, double>;
  for (const auto& [side, other] : {std::pair<const Map*, const Map*>{&want, &got}, {&got, &want}}) {
    for (const auto& [token, prob] : *side) {
      if (other->count(token)) continue;
      ASSERT_TRUE(mass_before.count(token)) << where << ": token " << token << " not in top-k";
      EXPECT_NEAR(mass_before[token], p.top_p, 1e-5) << where << ": token " << token;
      differing_mass += prob;
    }
  }
  if (differing_mass > 0) ++*cut_differences;
  for (const auto& [token, prob] : want) {
    if (got.count(token)) {
      EXPECT_NEAR(got[token], prob, (1e-5 + differing_mass) * prob + 1e-15) << where << token;
    }
  }
}

TEST(Sampler, DistributionMatchesReference) {
  int differences = 0, cases = 0;
  const size_t sizes[] = {1, 7, 16, 17, 1000, 4099};
  const float temperatures[] = {0.3f, 0.6f, 1.0f, 1.7f};
  const int top_ks[] = {0, 2, 5, 32, 300, 5000};
  const float top_ps[] = {0.3f, 0.9f, 0.99f, 1.0f};
  uint64_t seed = 0;
  for (size_t n : sizes) {
    for (float t : temperatures) {
      const auto row = normal_row(n, ++seed, 2.0f, n > 100 ? 10 : 0);
      for (int k : top_ks) {
        for (float p : top_ps) {
          expect_matches_reference(row, params(t, k, p), &differences);
          ++cases;
        }
      }
    }
  }
  // Random rows almost never put a token within 1e-5 of the cut: differences must be rare.
  EXPECT_LT(differences, cases / 50);
}

TEST(Sampler, DistributionMatchesReferenceOnLlamaVocabulary) {
  int differences = 0;
  // Peaked rows (the usual case), a broad row whose nucleus spans thousands of tokens in many
  // histogram buckets, and a nearly flat row (nucleus ~ the whole vocabulary, one bucket).
  const auto peaked = normal_row(kLlamaVocab, 11, 2.0f, 40);
  const auto broad = normal_row(kLlamaVocab, 12, 1.0f, 0);
  const auto flat = normal_row(kLlamaVocab, 13, 0.01f, 0);
  for (const auto* row : {&peaked, &broad, &flat}) {
    for (const auto& p : {params(0.6f, 0, 0.9f), params(1.0f, 0, 0.5f), params(1.0f, 0, 1.0f),
                          params(0.6f, 32, 0.9f), params(1.0f, 2000, 0.8f),
                          params(1.0f, 60000, 0.95f)}) {
      expect_matches_reference(*row, p, &differences);
    }
  }
  EXPECT_LE(differences, 4);  // only the flat row's cuts may differ
}

TEST(Sampler, NucleusOfExactTiesKeepsLowestIds) {
  // 5000 equal logits (all weights exactly 1): top_p 0.5 keeps exactly ids 0..2499, and the
  // histogram narrowing cannot split a tie, so this also covers its fallback to sorting.
  const std::vector<float> row(5000, 0.25f);
  Sampler sampler(params(1.0f, 0, 0.5f), 0);
  const auto dist = sampler.distribution(row);
  ASSERT_EQ(dist.size(), 2500u);
  std::vector<int32_t> ids;
  for (const auto& t : dist) ids.push_back(t.token);
  std::sort(ids.begin(), ids.end());
  for (int32_t i = 0; i < 2500; ++i) EXPECT_EQ(ids[i], i);
  for (int i = 0; i < 2000; ++i) ASSERT_LT(sampler.sample(row), 2500);
  // Ties at the top-k cut: the lowest ids win.
  Sampler top_k(params(1.0f, 10, 1.0f), 0);
  const auto kept = top_k.distribution(row);
  ASSERT_EQ(kept.size(), 10u);
  for (const auto& t : kept) EXPECT_LT(t.token, 10);
}

TEST(Sampler, SameSeedAndStreamGiveSameSequence) {
  const auto row = normal_row(1000, 5, 0.5f, 0);  // high entropy: ~1000 plausible tokens
  Sampler a(params(1.0f, 0, 1.0f, 42), 3), b(params(1.0f, 0, 1.0f, 42), 3);
  Sampler other_stream(params(1.0f, 0, 1.0f, 42), 4), other_seed(params(1.0f, 0, 1.0f, 43), 3);
  int same_stream_matches = 0, seed_matches = 0;
  for (int i = 0; i < 500; ++i) {
    const int32_t x = a.sample(row);
    ASSERT_EQ(x, b.sample(row)) << "draw " << i;
    same_stream_matches += x == other_stream.sample(row);
    seed_matches += x == other_seed.sample(row);
  }
  // Independent streams agree on a draw with probability ~sum p^2 ~ 1.3e-3 here: expect < 1
  // match in 500; 10 would be a 1e-9 event for independent streams.
  EXPECT_LT(same_stream_matches, 10);
  EXPECT_LT(seed_matches, 10);
}

TEST(Sampler, UserSequenceDoesNotDependOnOtherUsers) {
  const auto row = normal_row(kLlamaVocab, 9, 1.0f, 0);
  Sampler alone(SamplingParams{}, 7);
  std::vector<int32_t> expected;
  for (int i = 0; i < 50; ++i) expected.push_back(alone.sample(row));
  // The same user in a batch of 32, each user sampling in turn.
  std::vector<Sampler> batch;
  for (uint64_t u = 0; u < 32; ++u) batch.emplace_back(SamplingParams{}, u);
  for (int i = 0; i < 50; ++i) {
    for (uint64_t u = 0; u < 32; ++u) {
      const int32_t token = batch[u].sample(row);
      if (u == 7) {
        ASSERT_EQ(token, expected[i]) << "step " << i;
      }
    }
  }
}

TEST(Sampler, RejectsNaNAndPositiveInfinityOnEveryPath) {
  const std::vector<SamplingParams> settings = {params(0.0f, 0, 1.0f), params(0.6f, 32, 0.9f),
                                                params(0.6f, 0, 0.9f), params(0.6f, 0, 1.0f),
                                                params(0.6f, 50000, 0.9f)};
  // Bad values at the first index, inside a 16-wide SIMD block, and in the scalar tail.
  for (size_t where : {size_t{0}, size_t{40}, kLlamaVocab - 1, size_t{100001}}) {
    for (float bad : {kNaN, kInf}) {
      std::vector<float> row = normal_row(kLlamaVocab, 3, 2.0f, 5);
      row[where] = bad;
      const std::string what = std::isnan(bad) ? "NaN" : "+inf";
      for (const auto& p : settings) {
        Sampler sampler(p, 0);
        EXPECT_THAT([&] { sampler.sample(row); },
                    ThrowsMessage<Error>(HasSubstr("logit " + std::to_string(where) + " is " +
                                                   what)))
            << "k " << p.top_k << " T " << p.temperature;
        EXPECT_THROW(sampler.distribution(row), Error);
      }
    }
  }
}

TEST(Sampler, RejectsEmptyAndAllMinusInfinityRows) {
  for (const auto& p : {params(0.0f, 0, 1.0f), params(1.0f, 5, 0.9f), params(1.0f, 0, 0.9f),
                        params(1.0f, 0, 1.0f)}) {
    Sampler sampler(p, 0);
    EXPECT_THAT([&] { sampler.sample({}); }, ThrowsMessage<Error>(HasSubstr("empty")));
    const std::vector<float> dead(100, -kInf);
    EXPECT_THAT([&] { sampler.sample(dead); },
                ThrowsMessage<Error>(HasSubstr("every logit is -inf")));
  }
}

TEST(SamplingParams, ParsesAllKeysAndDefaults) {
  const auto p = parse_sampling_params(R"({"temperature":0.8,"top_p":0.5,"top_k":0,"seed":7})");
  EXPECT_FLOAT_EQ(p.temperature, 0.8f);
  EXPECT_FLOAT_EQ(p.top_p, 0.5f);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.seed, 7u);
  const auto d = parse_sampling_params("{}");
  EXPECT_FLOAT_EQ(d.temperature, 0.6f);
  EXPECT_FLOAT_EQ(d.top_p, 0.9f);
  EXPECT_EQ(d.top_k, 32);
  EXPECT_EQ(d.seed, 42u);
  EXPECT_EQ(parse_sampling_params(R"({"seed":18446744073709551615})").seed, ~0ULL);
  EXPECT_EQ(parse_sampling_params(R"({"temperature":0})").temperature, 0.0f);
  EXPECT_EQ(parse_sampling_params(R"({"top_p":1})").top_p, 1.0f);
}

TEST(SamplingParams, RejectsBadInputNamingTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"temprature":0.5})", "unknown key 'temprature'"},
      {R"({"temperature":"hot"})", "'temperature' must be a number"},
      {R"({"temperature":-0.1})", "'temperature' must be a finite number >= 0"},
      {R"({"top_p":0})", "'top_p' must be in (0, 1]"},
      {R"({"top_p":1.5})", "'top_p' must be in (0, 1]"},
      {R"({"top_p":null})", "'top_p' must be a number"},
      {R"({"top_k":-1})", "'top_k' must be in [0,"},
      {R"({"top_k":2.5})", "'top_k' must be an integer"},
      {R"({"top_k":true})", "'top_k' must be an integer"},
      {R"({"seed":-1})", "'seed' must be an integer"},
      {R"({"seed":1.5})", "'seed' must be an integer"},
      {R"([0.6])", "expected a JSON object"},
      {R"({"temperature":0.6)", "invalid JSON"},
      {R"({"temperature":1e999})", "invalid JSON"},  // the parser's out_of_range, not a parse_error
  };
  for (const auto& entry : cases) {  // clang 14: lambdas cannot capture structured bindings
    const auto& json = entry.first;
    const auto& message = entry.second;
    EXPECT_THAT([&] { parse_sampling_params(json); }, ThrowsMessage<Error>(HasSubstr(message)))
        << json;
  }
}

TEST(Sampler, ConstructorValidatesParams) {
  EXPECT_THROW(Sampler(params(-1.0f, 0, 1.0f), 0), Error);
  EXPECT_THROW(Sampler(params(1.0f, -3, 1.0f), 0), Error);
  EXPECT_THROW(Sampler(params(1.0f, 0, 0.0f), 0), Error);
  EXPECT_THROW(Sampler(params(std::numeric_limits<float>::quiet_NaN(), 0, 1.0f), 0), Error);
}

}  // namespace
}  // namespace llama3::runtime
