#include "core/large_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace llama3 {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}

LargeBuffer::LargeBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  // Map 2 MiB more than asked and start at the first 2 MiB boundary inside.
  mapped_ = (bytes + kHugePage - 1) / kHugePage * kHugePage + kHugePage;
  void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  check(p != MAP_FAILED, "cannot reserve {:.2f} GiB of memory: {}", static_cast<double>(bytes) / (1 << 30),
        std::strerror(errno));
  auto* base = static_cast<std::byte*>(p);
  const auto address = reinterpret_cast<uintptr_t>(base);
  const size_t skip = (kHugePage - address % kHugePage) % kHugePage;
  // The unaligned head and the tail beyond the aligned area are returned right away.
  if (skip) munmap(base, skip);
  const size_t used = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  const size_t tail = mapped_ - skip - used;
  if (tail) munmap(base + skip + used, tail);
  data_ = base + skip;
  mapped_ = used;
  madvise(data_, mapped_, MADV_HUGEPAGE);  // advice only: without THP the pages are 4 KiB
}

LargeBuffer::~LargeBuffer() { release(); }

LargeBuffer::LargeBuffer(LargeBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

LargeBuffer& LargeBuffer::operator=(LargeBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

void LargeBuffer::release() {
  if (data_) munmap(data_, mapped_);
  data_ = nullptr;
  size_ = mapped_ = 0;
}

}  // namespace llama3
