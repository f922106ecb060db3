#pragma once
// Work splitting over the machine's cores. OpenMP's persistent, spinning team keeps the cost of
// one parallel region to a few microseconds, which matters: a decode step runs ~100 of them.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstddef>

namespace llama3 {

inline int thread_count() { return omp_get_max_threads(); }

// How many parallel regions parallel_for has opened (a relaxed counter: the benchmark reports
// the fork-joins per decode step).
inline std::atomic<uint64_t>& parallel_region_count() {
  static std::atomic<uint64_t> count{0};
  return count;
}
inline void set_thread_count(int n) { omp_set_num_threads(std::max(1, n)); }

// Calls fn(begin, end) on contiguous chunks of [0, n), one chunk per thread, chunk starts
// rounded to `align` so SIMD row groups never straddle two threads.
template <typename Fn>
void parallel_for(size_t n, Fn&& fn, size_t align = 1) {
  const int threads = static_cast<int>(std::min<size_t>(thread_count(), (n + align - 1) / align));
  if (threads <= 1) {
    if (n) fn(size_t{0}, n);
    return;
  }
  parallel_region_count().fetch_add(1, std::memory_order_relaxed);
#pragma omp parallel num_threads(threads)
  {
    // The team may be smaller than asked (inside another parallel region it is one thread):
    // split by the team's real size so every index is covered.
    const size_t team = static_cast<size_t>(omp_get_num_threads());
    const size_t t = static_cast<size_t>(omp_get_thread_num());
    const size_t groups = (n + align - 1) / align;
    const size_t begin = std::min(n, groups * t / team * align);
    const size_t end = std::min(n, groups * (t + 1) / team * align);
    if (begin < end) fn(begin, end);
  }
}

// fn(i) for each i in [0, n), handed out one at a time to whichever thread is free next: for
// tasks of uneven cost (attention tiles of a causal prompt). Each call of fn must write only its
// own outputs; which thread runs which task varies from run to run.
template <typename Fn>
void parallel_tasks(size_t n, Fn&& fn) {
  const int threads = static_cast<int>(std::min<size_t>(thread_count(), n));
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  parallel_region_count().fetch_add(1, std::memory_order_relaxed);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (size_t i = 0; i < n; ++i) fn(i);
}

}  // namespace llama3
