#pragma once
// The process's memory use, for the demo's report: resident set size now and at its peak, from
// /proc/self/status (VmRSS, VmHWM). Both return 0 where that file is unavailable (not Linux).
#include <cstddef>

namespace llama3::runtime {

size_t current_rss_bytes();
size_t peak_rss_bytes();

}  // namespace llama3::runtime
