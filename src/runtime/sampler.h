#pragma once
// Per-user token sampling from one row of logits.
//
// Each user owns a Sampler with its own random stream derived from (seed, user index), and every
// call to sample() consumes exactly one 64-bit draw: a user's text therefore depends only on its
// own logits and its own position in its stream, never on which other users share the batch.
// The generator (xoshiro256**) and the mapping from raw bits to a uniform double are written out
// here rather than taken from <random> distributions, whose output differs between standard
// libraries, so a seed reproduces the same text everywhere.
#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace llama3::runtime {

struct SamplingParams {
  float temperature = 0.6f;  // 0 = greedy (argmax)
  float top_p = 0.9f;        // nucleus mass in (0, 1]; 1 = no nucleus cut
  int top_k = 32;            // 0 = no top-k limit
  uint64_t seed = 42;
};

// Parses '{"temperature":0.6,"top_p":0.9,"top_k":32,"seed":42}'; every key is optional and falls
// back to the defaults above. Throws llama3::Error naming the key on an unknown key, a value of
// the wrong type or a value out of range (temperature < 0, top_p not in (0, 1], top_k < 0).
SamplingParams parse_sampling_params(std::string_view json);

// Throws llama3::Error naming the field if `params` is out of range (same rules as the parser).
void validate_sampling_params(const SamplingParams& params);

// xoshiro256** seeded through splitmix64: small, fast, and specified bit for bit.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed);
  uint64_t next();
  // Uniform in [0, 1) from the top 53 bits of one draw.
  double next_double() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::array<uint64_t, 4> s_{};
};

struct TokenProbability {
  int32_t token;
  double probability;
};

class Sampler {
 public:
  // `user_stream` is the user's index (or any id stable for that user); it selects an
  // independent random stream for the same seed. Throws llama3::Error on out-of-range params.
  Sampler(const SamplingParams& params, uint64_t user_stream);

  // Picks the next token id from a logits row (any vocabulary size >= 1).
  //  - temperature 0 (or below ~3e-39, where 1/T overflows) or top_k 1: argmax, lowest index
  //    on ties.
  //  - otherwise p = softmax(logits / T); keep the top_k most probable tokens (ties broken by
  //    lower index); within those, renormalized, keep the smallest set of most probable tokens
  //    whose cumulative probability reaches top_p (at least one); renormalize and draw.
  //    (top_p is measured on the top-k-renormalized distribution, as HF transformers and vLLM do.)
  // Throws llama3::Error if the row is empty or holds a NaN or +inf, or if every logit is -inf.
  // -inf logits are allowed and mean "never pick this token".
  int32_t sample(std::span<const float> logits);

  // The tokens sample() can return for this row and their probabilities (summing to 1), in the
  // order sample() scans them. Does not advance the random stream. For tests and diagnostics
  // (e.g. showing a user the alternatives); same errors as sample().
  std::vector<TokenProbability> distribution(std::span<const float> logits);

  const SamplingParams& params() const { return params_; }

  // How many of a row's largest logits sample() looks at: 1 for argmax, top_k, or 0 for the
  // whole row (no top_k). A row holding only those (the rest -inf, as a mesh gathers them:
  // LlamaModel::set_logit_candidates) gives the same token and distribution as the whole row.
  int64_t candidates_needed() const { return greedy_ ? 1 : params_.top_k; }

 private:
  struct Candidate {
    float logit;
    float weight;  // exp((logit - max) / T), unnormalized
    int32_t id;
  };
  void check_row(std::span<const float> logits) const;
  bool full_vocab(size_t vocab) const;
  size_t select_top_k(std::span<const float> logits);
  double weigh_full_vocab(std::span<const float> logits);
  size_t select_full_vocab_nucleus(std::span<const float> logits, double mass);
  size_t narrow_nucleus(size_t included, double included_mass, double target, float max_logit);
  int32_t draw(std::span<const Candidate> nucleus, double u) const;

  SamplingParams params_;
  Xoshiro256 rng_;
  float inv_t_ = 0.0f;   // 1 / temperature
  bool greedy_ = false;  // temperature 0 (or so small 1/T overflows) or top_k 1: argmax
  float max_logit_ = 0.0f;  // of the row weigh_full_vocab last saw
  // Scratch reused across calls so the hot path does not allocate after the first step.
  std::vector<Candidate> candidates_;
  std::vector<Candidate> boundary_;
  std::vector<float> weights_;      // per vocabulary entry (top_k == 0 only)
  std::vector<uint8_t> buckets_;    // per vocabulary entry: histogram bucket of its weight
  std::vector<double> block_mass_;  // sums of weights_ over consecutive blocks of entries
};

}  // namespace llama3::runtime
