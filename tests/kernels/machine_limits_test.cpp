// The bandwidth and compute-peak probes: every read loop really reads every byte (the same fold
// as the scalar loop), and the probes report plausible positive rates.
#include <gtest/gtest.h>

#include <vector>

#include "kernel_test_util.h"
#include "kernels/compute_peak.h"
#include "kernels/cpu_features.h"
#include "kernels/memory_bandwidth.h"

namespace llama3::kernels {
namespace {

TEST(MemoryBandwidth, EveryReadLoopFoldsEveryByte) {
  std::vector<std::byte> buffer(64 * 1024);
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<std::byte>((i * 2654435761u) >> 13);
  const uint64_t ref = read_bytes_scalar(buffer.data(), buffer.size());
  for (Isa isa : testing::simd_isas()) {
    const uint64_t got = isa == Isa::Avx2 ? read_bytes_avx2(buffer.data(), buffer.size())
                                          : read_bytes_avx512(buffer.data(), buffer.size());
    EXPECT_EQ(got, ref) << isa_name(isa);
    buffer[buffer.size() - 1] ^= std::byte{1};  // the last byte counts too
    const uint64_t changed = isa == Isa::Avx2 ? read_bytes_avx2(buffer.data(), buffer.size())
                                              : read_bytes_avx512(buffer.data(), buffer.size());
    EXPECT_NE(changed, ref) << isa_name(isa);
    buffer[buffer.size() - 1] ^= std::byte{1};
  }
}

TEST(MemoryBandwidth, ReportsAPositiveRate) { EXPECT_GT(measure_read_bandwidth(size_t{8} << 20, 2), 1e8); }

TEST(ComputePeak, ReportsTheProbesThisCpuHas) {
  const ComputePeak p = measure_compute_peak(0.01);
  EXPECT_GE(p.threads, 1);
  if (detected_isa() >= Isa::Avx2) {
    EXPECT_GT(p.fp32_fma_gflops, 1.0);
  }
  EXPECT_EQ(p.int8_dot_gops > 0.0, has_avx512_vnni());
  EXPECT_EQ(p.bf16_dot_gflops > 0.0, has_avx512_bf16());
}

}  // namespace
}  // namespace llama3::kernels
