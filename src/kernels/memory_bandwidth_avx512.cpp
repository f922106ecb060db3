// AVX-512 read loop of the bandwidth probe: 64-byte loads, eight per iteration into four
// accumulators (a load is the limit, not the xor).
#include <immintrin.h>

#include "kernels/memory_bandwidth.h"

namespace llama3::kernels {

uint64_t read_bytes_avx512(const std::byte* p, size_t bytes) {
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  for (size_t i = 0; i + 512 <= bytes; i += 512) {
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) acc[k % 4] = _mm512_xor_si512(acc[k % 4], _mm512_loadu_si512(p + i + k * 64));
  }
  const __m512i x = _mm512_xor_si512(_mm512_xor_si512(acc[0], acc[1]), _mm512_xor_si512(acc[2], acc[3]));
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, x);
  uint64_t r = 0;
  for (uint64_t v : lanes) r ^= v;
  return r;
}

}  // namespace llama3::kernels
