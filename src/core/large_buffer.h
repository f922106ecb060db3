#pragma once
// A large block of memory for data streamed at memory bandwidth (the KV cache): anonymous pages
// committed by the OS on first write (an unused part of a pool costs nothing), aligned to 2 MiB
// and marked for transparent huge pages where the kernel allows it, so long sequential reads
// meet fewer page boundaries (the hardware prefetchers stop at each) and TLB misses.
#include <cstddef>

namespace llama3 {

class LargeBuffer {
 public:
  LargeBuffer() = default;
  explicit LargeBuffer(size_t bytes);  // throws llama3::Error when the memory is not there
  ~LargeBuffer();
  LargeBuffer(LargeBuffer&& other) noexcept;
  LargeBuffer& operator=(LargeBuffer&& other) noexcept;
  LargeBuffer(const LargeBuffer&) = delete;
  LargeBuffer& operator=(const LargeBuffer&) = delete;

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void release();
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
};

}  // namespace llama3
