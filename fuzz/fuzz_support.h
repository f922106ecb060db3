#pragma once
// Shared by the libFuzzer harnesses. Each harness feeds bytes to one of the project's parsers
// and checks properties beyond "no crash":
//  - a rejected input is a llama3::Error (or the server's ApiError) with a message: any other
//    exception (std::out_of_range, nlohmann's, bad_alloc from a size taken on trust) or an empty
//    message is a finding, reported by trapping so libFuzzer saves the input;
//  - what parses is consistent (tensor views inside the file, sizes that match their shapes)
//    and, where a writer exists, survives a write and a re-read unchanged.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/error.h"

namespace llama3::fuzz {

// Prints why and traps: libFuzzer records the input as a crash.
[[noreturn]] inline void finding(std::string_view what) {
  std::fprintf(stderr, "FUZZ FINDING: %.*s\n", static_cast<int>(what.size()), what.data());
  std::fflush(stderr);
  __builtin_trap();
}

inline void require(bool ok, std::string_view what) {
  if (!ok) finding(what);
}

// Runs `parse`; a llama3::Error with a message is a proper rejection, anything else a finding.
// Returns whether it succeeded.
template <typename Fn>
bool accepts(Fn&& parse) {
  try {
    parse();
    return true;
  } catch (const Error& e) {
    require(e.what()[0] != '\0', "rejected with an empty message");
    return false;
  } catch (const std::exception& e) {
    finding(std::string("not a llama3::Error: ") + e.what());
  }
}

// A folder of this process in /dev/shm (tmpfs: no disk I/O per input), for the parsers that
// read files.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path d = std::filesystem::path("/dev/shm") / ("llama3-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::filesystem::path write_scratch(const std::string& name, std::span<const uint8_t> bytes) {
  const std::filesystem::path path = scratch_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

inline bool inside(std::span<const std::byte> part, std::span<const std::byte> whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace llama3::fuzz
