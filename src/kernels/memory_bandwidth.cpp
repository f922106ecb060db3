#include "kernels/memory_bandwidth.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/parallel.h"
#include "core/timer.h"

namespace llama3::kernels {

double measure_read_bandwidth(size_t bytes, int passes) {
  const size_t words = bytes / sizeof(uint64_t);
  auto buffer = std::make_unique_for_overwrite<uint64_t[]>(words);
  parallel_for(words, [&](size_t b, size_t e) {  // first touch by the thread that reads it
    for (size_t i = b; i < e; ++i) buffer[i] = i;
  });
  double best = 0.0;
  volatile uint64_t sink = 0;
  for (int p = 0; p < passes; ++p) {
    const Timer timer;
    parallel_for(words, [&](size_t b, size_t e) {
      // Eight independent accumulators keep enough loads in flight to saturate memory.
      uint64_t acc[8] = {};
      size_t i = b;
      for (; i + 8 <= e; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] ^= buffer[i + k];
      for (; i < e; ++i) acc[0] ^= buffer[i];
      uint64_t x = 0;
      for (uint64_t a : acc) x ^= a;
      sink = sink ^ x;
    });
    best = std::max(best, static_cast<double>(words * sizeof(uint64_t)) / timer.seconds());
  }
  return best;
}

}  // namespace llama3::kernels
