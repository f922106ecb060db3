#include "core/fault_signals.h"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>

namespace llama3 {

namespace {

// A slot is free (0), being filled (1) or published (2); the handler reads published ones only.
struct MappingSlot {
  std::atomic<int> state{0};
  std::atomic<const std::byte*> data{nullptr};
  std::atomic<size_t> size{0};
  char path[512] = {};
};
std::array<MappingSlot, 256> g_mappings;

void write_all(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void on_sigbus(int, siginfo_t* info, void*) {
  const auto* addr = static_cast<const std::byte*>(info ? info->si_addr : nullptr);
  for (MappingSlot& slot : g_mappings) {
    if (slot.state.load(std::memory_order_acquire) != 2) continue;
    const std::byte* begin = slot.data.load(std::memory_order_relaxed);
    if (addr >= begin && addr < begin + slot.size.load(std::memory_order_relaxed)) {
      write_all("llama3: error: bus error reading ");
      write_all(slot.path);
      write_all(": the file shrank while mapped (another process truncated or rewrote it); keep weight files "
                "unchanged while a run uses them, then run again\n");
      ::_exit(1);
    }
  }
  write_all("llama3: error: bus error (SIGBUS): a memory-mapped file shrank while in use, or the disk failed\n");
  ::_exit(1);
}

}  // namespace

void install_fault_handlers() {
  struct sigaction sa = {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, nullptr);
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGXFSZ, &ignore, nullptr);
}

void register_mapping(const std::byte* data, size_t size, const std::filesystem::path& path) {
  if (!data) return;
  for (MappingSlot& slot : g_mappings) {
    int expected = 0;
    if (!slot.state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) continue;
    const std::string s = path.string();
    const size_t n = std::min(s.size(), sizeof(slot.path) - 1);
    std::memcpy(slot.path, s.data(), n);
    slot.path[n] = '\0';
    slot.data.store(data, std::memory_order_relaxed);
    slot.size.store(size, std::memory_order_relaxed);
    slot.state.store(2, std::memory_order_release);
    return;
  }
}

void unregister_mapping(const std::byte* data) {
  if (!data) return;
  for (MappingSlot& slot : g_mappings) {
    if (slot.state.load(std::memory_order_acquire) == 2 && slot.data.load(std::memory_order_relaxed) == data) {
      slot.state.store(1, std::memory_order_release);
      slot.data.store(nullptr, std::memory_order_relaxed);
      slot.state.store(0, std::memory_order_release);
      return;
    }
  }
}

bool is_registered_mapping(const std::byte* data, size_t size) {
  for (const MappingSlot& slot : g_mappings) {
    if (slot.state.load(std::memory_order_acquire) != 2) continue;
    const std::byte* begin = slot.data.load(std::memory_order_relaxed);
    const size_t n = slot.size.load(std::memory_order_relaxed);
    if (data >= begin && data <= begin + n && size <= static_cast<size_t>(begin + n - data)) return true;
  }
  return false;
}

}  // namespace llama3
