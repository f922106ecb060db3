#include "kernels/memory_bandwidth.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <new>

#include "core/parallel.h"
#include "core/timer.h"
#include "kernels/cpu_features.h"

namespace llama3::kernels {

uint64_t read_bytes_scalar(const std::byte* p, size_t bytes) {
  // Eight independent accumulators keep enough loads in flight.
  uint64_t acc[8] = {};
  for (size_t i = 0; i + 64 <= bytes; i += 64) {
    for (int k = 0; k < 8; ++k) {
      uint64_t v;
      std::memcpy(&v, p + i + k * 8, 8);
      acc[k] ^= v;
    }
  }
  uint64_t x = 0;
  for (uint64_t a : acc) x ^= a;
  return x;
}

namespace {

uint64_t read_bytes(const std::byte* p, size_t bytes) {
  switch (active_isa()) {
    case Isa::Avx512: return read_bytes_avx512(p, bytes);
    case Isa::Avx2: return read_bytes_avx2(p, bytes);
    case Isa::Scalar: return read_bytes_scalar(p, bytes);
  }
  return 0;
}

struct AlignedFree {
  void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }
};

}  // namespace

double measure_read_bandwidth(size_t bytes, int passes) {
  constexpr size_t kChunk = 512;  // the read loops' unit
  const size_t chunks = std::max<size_t>(bytes / kChunk, 1);
  std::unique_ptr<std::byte[], AlignedFree> buffer(
      static_cast<std::byte*>(::operator new[](chunks * kChunk, std::align_val_t{64})));
  // First touch by the thread that reads it, so pages sit near their reader.
  parallel_for(chunks, [&](size_t b, size_t e) { std::memset(buffer.get() + b * kChunk, 1, (e - b) * kChunk); });
  std::atomic<uint64_t> sink{0};
  double best = 0.0;
  for (int p = 0; p < passes; ++p) {
    const Timer timer;
    parallel_for(chunks, [&](size_t b, size_t e) {
      sink.fetch_xor(read_bytes(buffer.get() + b * kChunk, (e - b) * kChunk), std::memory_order_relaxed);
    });
    best = std::max(best, static_cast<double>(chunks * kChunk) / timer.seconds());
  }
  return best;
}

}  // namespace llama3::kernels
