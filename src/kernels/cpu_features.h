#pragma once
// Which SIMD kernels this CPU can run. Chosen once at start-up; LLAMA3_ISA=scalar|avx2|avx512
// forces a lower level (tests and benchmarks compare levels on the same machine).
#include <string_view>

namespace llama3::kernels {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

std::string_view isa_name(Isa isa);
Isa detected_isa();  // what the CPU supports
Isa active_isa();    // what the kernels use now
void set_active_isa(Isa isa);  // throws if the CPU lacks it

// Extensions beyond the Avx512 level (F/BW/VL/DQ) that some kernels use when present: the
// int8 products use the AVX2 kernel on AVX-512 CPUs without VNNI.
bool has_avx512_vnni();
bool has_avx512_bf16();

}  // namespace llama3::kernels
