#pragma once
// splitmix64's step (Steele, Lea and Flood): well mixed in every bit, so a counter or a chain of
// values through it serves as a random stream or a hash. Counter-based streams make element i of
// a random tensor the same whichever thread fills it.
#include <cstdint>

namespace llama3 {

inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace llama3
