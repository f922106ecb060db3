#pragma once
// Small helpers of the forward pass's two files (llama_model.cpp, llama_model_cross.cpp).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/parallel.h"

namespace llama3::model::detail {

template <typename T>
inline void ensure(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

// fn(begin, end) over [0, n) split over the threads, or on this thread when n is small: a
// fork-join costs microseconds, more than a decode step's element-wise work of one token.
template <typename Fn>
inline void parallel_rows(int64_t n, Fn&& fn, int64_t min_parallel = 2) {
  if (n < min_parallel) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  parallel_for(static_cast<size_t>(n), [&](size_t b, size_t e) { fn(static_cast<int64_t>(b), static_cast<int64_t>(e)); },
               16);
}

}  // namespace llama3::model::detail
