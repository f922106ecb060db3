#pragma once
// Measuring on a shared machine, for `llama3 bench`: repetitions with best and median, a wait
// for idle CPUs before each, and a redo of any repetition during which another process took
// CPU; the machine's limits (read bandwidth, compute peaks) measured the same way; and what a
// model's products cost at those limits.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "core/cpu_usage.h"
#include "kernels/compute_peak.h"
#include "model/model_weights.h"

namespace llama3::apps {

struct Hygiene {
  double idle_wait = 10.0;  // seconds to wait for idle CPUs before each repetition (0: none)
  int max_redo = 3;         // redos of a repetition another process disturbed
};

struct Stats {
  std::vector<double> values;  // one per kept repetition (higher is better)
  int redone = 0;
  double best() const;
  double median() const;
  nlohmann::json to_json() const;
};

// ", N disturbed reps redone" when there were any, for the printed figures.
std::string redone(const Stats& s);

// Runs rate() `reps` times under `h`'s rules.
template <typename Fn>
Stats measure(int reps, const Hygiene& h, Fn&& rate) {
  Stats s;
  for (int r = 0; r < reps; ++r) {
    for (int attempt = 0;; ++attempt) {
      if (h.idle_wait > 0) wait_for_idle(h.idle_wait);
      const CpuSample before = cpu_sample();
      const double value = rate();
      if (!disturbed(before, cpu_sample()) || attempt >= h.max_redo) {
        s.values.push_back(value);
        break;
      }
      ++s.redone;
    }
  }
  return s;
}

// The machine's limits: read bandwidth (bytes/s, vectorized, all threads) and compute peaks.
struct Limits {
  double bandwidth = 0.0;
  kernels::ComputePeak peak;
  void raise_to(const Limits& other);  // the best of two measurements of each figure
};

// Measured under `h`'s rules: a measurement another process disturbed is redone.
Limits measure_limits(const Hygiene& h);

// Seconds a token's products take at the compute peaks, for a set of matrices.
struct Ops {
  double bf16 = 0;  // 2 x multiply-adds on bf16 weights (fp32 FMA kernels)
  double int8 = 0;  // on 8-/4-bit weights (vpdpbusd kernels; fp32 FMA's peak where there is no VNNI)
  double seconds_at(const kernels::ComputePeak& p) const;
};

struct ModelCost {
  double bytes_per_token = 0;  // weights a decode step reads: every layer matrix and the LM head
  Ops layers;                  // per token
  Ops lm_head;                 // per token that needs logits (a prefill: only its last)
};

ModelCost model_cost(const model::ModelWeights& w);

// Microseconds one parallel region with no work costs (best of 5 runs of 2000).
double measure_fork_join_us();

}  // namespace llama3::apps
