#pragma once
// The register-only loop of the compute-peak probes (compute_peak.h), for the per-ISA files.
// The loop is written in asm: with intrinsics GCC 12 adds a register move per vpdpbusd (its tied
// accumulator operand) and keeps accumulator arrays in memory, so the probe would measure moves
// and stores instead of the instruction.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/compute_peak.h"

namespace llama3::kernels {

// `iterations` rounds of twelve copies of "op b, a, acc_j", the loop itself in the asm so the
// accumulators are plain registers (as arrays, GCC kept them in memory around the asm).
#define LLAMA3_PEAK_LOOP(op, Vec, init, Lane)                                                                 \
  Vec v0 = init, v1 = init, v2 = init, v3 = init, v4 = init, v5 = init, v6 = init, v7 = init, v8 = init,  \
      v9 = init, v10 = init, v11 = init;                                                                  \
  if (iterations > 0) {                                                                                  \
    asm volatile("1:\n\t" op " %14, %13, %0\n\t" op " %14, %13, %1\n\t" op " %14, %13, %2\n\t"          \
                 op " %14, %13, %3\n\t" op " %14, %13, %4\n\t" op " %14, %13, %5\n\t" op " %14, %13, %6\n\t" \
                 op " %14, %13, %7\n\t" op " %14, %13, %8\n\t" op " %14, %13, %9\n\t" op " %14, %13, %10\n\t" \
                 op " %14, %13, %11\n\t"                                                                 \
                 "dec %12\n\t"                                                                            \
                 "jnz 1b"                                                                                \
                 : "+v"(v0), "+v"(v1), "+v"(v2), "+v"(v3), "+v"(v4), "+v"(v5), "+v"(v6), "+v"(v7),         \
                   "+v"(v8), "+v"(v9), "+v"(v10), "+v"(v11), "+r"(iterations)                            \
                 : "v"(a), "v"(b)                                                                        \
                 : "cc");                                                                                \
  }                                                                                                      \
  const Vec all[] = {v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11};                                   \
  return first_lanes<Lane>(all)
static_assert(kPeakAccumulators == 12, "LLAMA3_PEAK_LOOP runs twelve accumulators");

// The sum of each accumulator's first lane, read as the lane type the instruction produces (float
// sums for FMA and bf16 dot products, int32 for vpdpbusd: reading those bits as a float would make
// a NaN, and converting that to int is undefined). Keeps the loop's results alive.
template <typename Lane, typename Vec>
inline Lane first_lanes(const Vec (&acc)[kPeakAccumulators]) {
  if constexpr (std::is_same_v<Lane, float>) {
    float s = 0.0f;
    for (const Vec& v : acc) {
      float lane;
      std::memcpy(&lane, &v, sizeof lane);
      s += lane;
    }
    return s;
  } else {
    uint32_t s = 0;  // unsigned: wraps instead of overflowing
    for (const Vec& v : acc) {
      uint32_t lane;
      std::memcpy(&lane, &v, sizeof lane);
      s += lane;
    }
    return static_cast<Lane>(s);
  }
}

}  // namespace llama3::kernels
