#pragma once
// Faults the kernel reports as signals, turned into what every other error is: one line on
// stderr and a non-zero exit. A memory-mapped file (a checkpoint, a GGUF, the weight cache) that
// another process truncates while we read it raises SIGBUS on the next page touched; the handler
// names the file (every MappedFile registers its range) instead of dying with "Bus error". A
// write past the file-size limit (RLIMIT_FSIZE) raises SIGXFSZ, which would kill the process:
// ignored, the write fails with EFBIG and the writer reports it (the weight cache then warns and
// the run goes on). Installed by the `llama3` binary's main; a library never takes signals from
// the program that embeds it.
#include <cstddef>
#include <filesystem>

namespace llama3 {

void install_fault_handlers();

// MappedFile's bookkeeping for the SIGBUS handler (async-signal-safe lookups; a fixed table, so
// mappings beyond its size are simply not named).
void register_mapping(const std::byte* data, size_t size, const std::filesystem::path& path);
void unregister_mapping(const std::byte* data);
// True when [data, data + size) lies inside one registered mapping.
bool is_registered_mapping(const std::byte* data, size_t size);

}  // namespace llama3
