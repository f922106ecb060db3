#include "dist/mesh.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <charconv>
#include <optional>

#include "core/error.h"

namespace llama3::dist {
namespace {

constexpr int kMaxSide = 1024;

struct DeviceMesh {
  std::string_view name;
  MeshShape shape;
};

// The original demo's --FAKE_DEVICE presets.
constexpr std::array<DeviceMesh, 4> kDevices = {{
    {"N150", {1, 1}},
    {"N300", {2, 1}},
    {"T3K", {8, 1}},
    {"TG", {8, 4}},
}};

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// Digits only (from_chars alone would accept a leading '-'), 1 .. kMaxSide.
std::optional<int> parse_side(std::string_view digits) {
  if (digits.empty() || digits.size() > 4) return std::nullopt;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int value = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (value < 1 || value > kMaxSide) return std::nullopt;
  return value;
}

}  // namespace

std::string MeshShape::name() const { return fmt::format("{}x{}", tensor, data); }

MeshShape parse_mesh(std::string_view text) {
  for (const DeviceMesh& d : kDevices) {
    if (equal_ignoring_case(text, d.name)) return d.shape;
  }
  const size_t x = text.find_first_of("xX");
  if (x != std::string_view::npos) {
    const std::optional<int> tensor = parse_side(text.substr(0, x));
    const std::optional<int> data = parse_side(text.substr(x + 1));
    if (tensor && data) return {*tensor, *data};
  }
  fail("unknown mesh '{}': expected TxD (tensor x data ranks, each 1..{}, e.g. 2x1 or 8x4) or a device: "
       "N150 (1x1), N300 (2x1), T3K (8x1), TG (8x4)",
       text, kMaxSide);
}

std::string mesh_device_name(MeshShape mesh) {
  for (const DeviceMesh& d : kDevices) {
    if (d.shape == mesh) return std::string(d.name);
  }
  return "";
}

void check_world_fits(MeshShape mesh, int world_size) {
  if (world_size == mesh.ranks()) return;
  const std::string device = mesh_device_name(mesh);
  const std::string label = device.empty() ? mesh.name() : fmt::format("{} ({})", device, mesh.name());
  fail("mesh {} needs {} rank{}: run it as `mpirun -np {} llama3 ...`; this run has {}", label, mesh.ranks(),
       mesh.ranks() == 1 ? "" : "s", mesh.ranks(), world_size);
}

MeshPlace place_in_mesh(MeshShape mesh, int world_rank) {
  check(world_rank >= 0 && world_rank < mesh.ranks(), "rank {} is not in mesh {} (ranks 0..{})", world_rank,
        mesh.name(), mesh.ranks() - 1);
  return {world_rank % mesh.tensor, mesh.tensor, world_rank / mesh.tensor, mesh.data};
}

}  // namespace llama3::dist
