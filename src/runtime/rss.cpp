#include "runtime/rss.h"

#include <cstdio>
#include <cstring>

namespace llama3::runtime {

namespace {

// The value of a "Name:   1234 kB" line of a /proc file, in bytes; 0 if absent.
size_t status_field_bytes(const char* name, const char* file = "/proc/self/status") {
  std::FILE* f = std::fopen(file, "r");
  if (!f) return 0;
  char line[256];
  size_t bytes = 0;
  const size_t name_length = std::strlen(name);
  while (std::fgets(line, sizeof(line), f)) {
    if (std::strncmp(line, name, name_length) == 0 && line[name_length] == ':') {
      unsigned long long kib = 0;
      if (std::sscanf(line + name_length + 1, "%llu", &kib) == 1) bytes = kib * 1024;
      break;
    }
  }
  std::fclose(f);
  return bytes;
}

}  // namespace

size_t current_rss_bytes() { return status_field_bytes("VmRSS"); }
size_t peak_rss_bytes() { return status_field_bytes("VmHWM"); }
size_t available_memory_bytes() { return status_field_bytes("MemAvailable", "/proc/meminfo"); }

}  // namespace llama3::runtime
