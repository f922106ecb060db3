#pragma once
// The process's memory use, for the demo's report: resident set size now and at its peak, from
// /proc/self/status (VmRSS, VmHWM); and the machine's available memory (/proc/meminfo's
// MemAvailable: free plus reclaimable caches). Each returns 0 where its file is unavailable.
// And the C heap's own view (glibc's mallinfo2): RSS alone cannot tell a leak (bytes in use keep
// growing) from an allocator holding freed memory (in use flat, free-but-held growing).
#include <cstddef>
#include <optional>

namespace llama3::runtime {

size_t current_rss_bytes();
size_t peak_rss_bytes();
size_t available_memory_bytes();

struct HeapUsage {
  size_t in_use = 0;      // bytes handed out by malloc and not yet freed (small chunks and mmapped ones)
  size_t free_held = 0;   // bytes freed but still held by malloc's arenas (resident unless trimmed)
};
// nullopt where the C library does not say (not glibc, glibc older than 2.33, or malloc replaced
// by AddressSanitizer's).
std::optional<HeapUsage> heap_usage();

}  // namespace llama3::runtime
