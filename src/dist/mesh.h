#pragma once
// The shape of a mesh of ranks: `tensor` ranks split each model (tensor parallelism) and `data`
// such groups serve independently (data parallelism). The world's ranks are laid out group by
// group, so a tensor group is `tensor` consecutive world ranks (on one node when they fit).
#include <string>
#include <string_view>

namespace llama3::dist {

struct MeshShape {
  int tensor = 1;
  int data = 1;

  int ranks() const { return tensor * data; }
  std::string name() const;  // "8x4": tensor x data
  bool operator==(const MeshShape&) const = default;
};

// "TxD" (positive integers up to 1024 each, e.g. "2x1", "8x4") or one of the original demo's
// device names, case-insensitive: N150 = 1x1, N300 = 2x1, T3K = 8x1, TG = 8x4. Anything else
// throws llama3::Error with a one-line message listing what is accepted.
MeshShape parse_mesh(std::string_view text);

// "N150", "N300", "T3K" or "TG" for those shapes; "" for any other.
std::string mesh_device_name(MeshShape mesh);

// Throws llama3::Error, naming the mpirun command that fits, when the world does not have
// exactly mesh.ranks() ranks.
void check_world_fits(MeshShape mesh, int world_size);

// Where one world rank sits in the mesh.
struct MeshPlace {
  int tensor_rank = 0;  // within its tensor group: 0 .. tensor_size - 1
  int tensor_size = 1;
  int data_group = 0;   // which tensor group: 0 .. data_groups - 1
  int data_groups = 1;
};

// Throws llama3::Error when world_rank is not in 0 .. mesh.ranks() - 1.
MeshPlace place_in_mesh(MeshShape mesh, int world_rank);

}  // namespace llama3::dist
