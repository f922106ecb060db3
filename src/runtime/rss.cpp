#include "runtime/rss.h"

#include <cstdio>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

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

// AddressSanitizer replaces malloc with its own allocator, which glibc's figures do not see.
#if defined(__SANITIZE_ADDRESS__)
#define LLAMA3_MALLOC_REPLACED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LLAMA3_MALLOC_REPLACED 1
#endif
#endif

std::optional<HeapUsage> heap_usage() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)) && !defined(LLAMA3_MALLOC_REPLACED)
  // mallinfo2 walks every arena under its lock: cheap enough for a /metrics scrape, not per token.
  const struct mallinfo2 m = mallinfo2();
  return HeapUsage{.in_use = m.uordblks + m.hblkhd, .free_held = m.fordblks};
#else
  return std::nullopt;
#endif
}

}  // namespace llama3::runtime
