#include "model/mesh_jobs.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"

namespace llama3::model {
namespace {

constexpr int64_t kEnd = -1;
constexpr size_t kIdentityBytes = 128;
constexpr size_t kErrorBytes = 512;  // per rank in agree_opened: the start of its message

// A fixed-size field: the bytes of `text`, cut to `n` and padded with zeros.
std::vector<std::byte> fixed(std::string_view text, size_t n) {
  std::vector<std::byte> out(n);
  std::memcpy(out.data(), text.data(), std::min(n - 1, text.size()));
  return out;
}

std::string from_fixed(const std::byte* p, size_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  return std::string(c, strnlen(c, n));
}

}  // namespace

std::string_view build_identity() {
  static const std::string id = std::string("llama3 0.1 built ") + __DATE__ + " " + __TIME__ + " by " +
#if defined(__clang__)
                                "clang " __clang_version__;
#else
                                "gcc " __VERSION__;
#endif
  return id;
}

void send_open_job(dist::Communicator& group, std::string_view request_json) {
  std::array<int64_t, 1> size{static_cast<int64_t>(request_json.size())};
  group.broadcast(std::as_writable_bytes(std::span(size)), 0);
  std::vector<std::byte> identity = fixed(build_identity(), kIdentityBytes);
  group.broadcast(identity, 0);
  std::vector<std::byte> body(request_json.size());
  std::memcpy(body.data(), request_json.data(), body.size());
  if (!body.empty()) group.broadcast(body, 0);
}

void send_end(dist::Communicator& group) {
  std::array<int64_t, 1> size{kEnd};
  group.broadcast(std::as_writable_bytes(std::span(size)), 0);
}

std::optional<MeshJob> receive_job(dist::Communicator& group) {
  std::array<int64_t, 1> size{};
  group.broadcast(std::as_writable_bytes(std::span(size)), 0);
  if (size[0] == kEnd) return std::nullopt;
  check(size[0] >= 0 && size[0] < (int64_t{1} << 24), "mesh: rank {} received a malformed job", group.rank());
  std::vector<std::byte> identity(kIdentityBytes);
  group.broadcast(identity, 0);
  std::vector<std::byte> body(static_cast<size_t>(size[0]));
  if (!body.empty()) group.broadcast(body, 0);
  MeshJob job{std::string(reinterpret_cast<const char*>(body.data()), body.size()), ""};
  const std::string leader = from_fixed(identity.data(), identity.size());
  if (leader != build_identity()) {
    job.mismatch = fmt::format("it runs {} but rank 0 runs {}: every rank needs the same build", build_identity(), leader);
  }
  return job;
}

void agree_opened(dist::Communicator& group, std::string_view error) {
  const std::vector<std::byte> mine = fixed(error, kErrorBytes);
  std::vector<std::byte> all(mine.size() * static_cast<size_t>(group.size()));
  group.all_gather(mine, all);
  for (int r = 0; r < group.size(); ++r) {
    const std::string e = from_fixed(all.data() + static_cast<size_t>(r) * kErrorBytes, kErrorBytes);
    if (!e.empty()) throw MeshOpenError(fmt::format("mesh: rank {} could not open its share of the model: {}", r, e));
  }
}

}  // namespace llama3::model
