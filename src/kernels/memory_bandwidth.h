#pragma once
// The machine's limit for batch-1 decode: how fast all cores together can read memory.
#include <cstddef>

namespace llama3::kernels {

// Reads a `bytes` buffer (much larger than the caches) `passes` times with all threads and
// returns the best pass in bytes per second.
double measure_read_bandwidth(size_t bytes, int passes);

}  // namespace llama3::kernels
