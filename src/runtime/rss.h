#pragma once
// The process's memory use, for the demo's report: resident set size now and at its peak, from
// /proc/self/status (VmRSS, VmHWM); and the machine's available memory (/proc/meminfo's
// MemAvailable: free plus reclaimable caches). Each returns 0 where its file is unavailable.
#include <cstddef>

namespace llama3::runtime {

size_t current_rss_bytes();
size_t peak_rss_bytes();
size_t available_memory_bytes();

}  // namespace llama3::runtime
