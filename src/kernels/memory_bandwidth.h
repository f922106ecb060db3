#pragma once
// The machine's limit for batch-1 decode: how fast all cores together can read memory.
#include <cstddef>
#include <cstdint>

namespace llama3::kernels {

// Reads a `bytes` buffer (much larger than the caches) `passes` times with all threads, using
// the widest vector loads the CPU has, and returns the best pass in bytes per second.
double measure_read_bandwidth(size_t bytes, int passes);

// The read loops behind it: fold `bytes` (a multiple of 512) at p into a value that keeps the
// loads observable.
uint64_t read_bytes_scalar(const std::byte* p, size_t bytes);
uint64_t read_bytes_avx2(const std::byte* p, size_t bytes);
uint64_t read_bytes_avx512(const std::byte* p, size_t bytes);

}  // namespace llama3::kernels
