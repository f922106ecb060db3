#include "kernels/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace llama3::kernels {

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

Isa detected_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
      return Isa::Avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
    return Isa::Scalar;
  }();
  return isa;
}

bool has_avx512_vnni() {
  static const bool has = detected_isa() == Isa::Avx512 && __builtin_cpu_supports("avx512vnni");
  return has;
}

bool has_avx512_bf16() {
  static const bool has = detected_isa() == Isa::Avx512 && __builtin_cpu_supports("avx512bf16");
  return has;
}

namespace {

Isa initial_isa() {
  Isa isa = detected_isa();
  if (const char* forced = std::getenv("LLAMA3_ISA")) {
    const std::string f = forced;
    Isa wanted = f == "scalar" ? Isa::Scalar : f == "avx2" ? Isa::Avx2 : f == "avx512" ? Isa::Avx512 : isa;
    if (wanted < isa) isa = wanted;  // never above what the CPU has
  }
  return isa;
}

std::atomic<Isa>& active() {
  static std::atomic<Isa> isa{initial_isa()};
  return isa;
}

}  // namespace

Isa active_isa() { return active().load(std::memory_order_relaxed); }

void set_active_isa(Isa isa) {
  check(isa <= detected_isa(), "this CPU does not support {} kernels", isa_name(isa));
  active().store(isa, std::memory_order_relaxed);
}

}  // namespace llama3::kernels
