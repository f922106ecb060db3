#include "dist/mesh.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

#include "core/error.h"

namespace llama3::dist {
namespace {

std::string error_of(auto&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DistMeshShape, RanksAndName) {
  EXPECT_EQ((MeshShape{8, 4}.ranks()), 32);
  EXPECT_EQ((MeshShape{8, 4}.name()), "8x4");
  EXPECT_EQ(MeshShape{}.ranks(), 1);
  EXPECT_EQ(MeshShape{}.name(), "1x1");
}

TEST(DistParseMesh, TensorByData) {
  EXPECT_EQ(parse_mesh("2x1"), (MeshShape{2, 1}));
  EXPECT_EQ(parse_mesh("8x4"), (MeshShape{8, 4}));
  EXPECT_EQ(parse_mesh("1x1"), (MeshShape{1, 1}));
  EXPECT_EQ(parse_mesh("3X5"), (MeshShape{3, 5}));
  EXPECT_EQ(parse_mesh("1024x1024"), (MeshShape{1024, 1024}));
  EXPECT_EQ(parse_mesh("02x1"), (MeshShape{2, 1}));
}

TEST(DistParseMesh, DeviceNamesInAnyCase) {
  const std::pair<const char*, MeshShape> devices[] = {
      {"N150", {1, 1}}, {"N300", {2, 1}}, {"T3K", {8, 1}}, {"TG", {8, 4}},
      {"n150", {1, 1}}, {"n300", {2, 1}}, {"t3k", {8, 1}}, {"tg", {8, 4}}, {"Tg", {8, 4}}};
  for (const auto& [name, shape] : devices) EXPECT_EQ(parse_mesh(name), shape) << name;
}

TEST(DistParseMesh, AnythingElseIsRefusedWithWhatIsAccepted) {
  for (const char* bad : {"", "x", "2x", "x2", "0x1", "2x0", "-1x2", "2x-1", "+2x1", "1025x1", "1x1025", "10000x1",
                          "2x1x1", "2 x 1", " 2x1", "2x1 ", "2*1", "8", "N151", "T3", "TGX", "N150 ", "0x0"}) {
    const std::string message = error_of([&] { parse_mesh(bad); });
    EXPECT_NE(message.find("unknown mesh '" + std::string(bad) + "'"), std::string::npos) << message;
    for (const char* accepted : {"TxD", "N150 (1x1)", "N300 (2x1)", "T3K (8x1)", "TG (8x4)"}) {
      EXPECT_NE(message.find(accepted), std::string::npos) << bad << ": " << message;
    }
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line";
  }
}

TEST(DistMeshDeviceName, TheDemoDevicesOnly) {
  EXPECT_EQ(mesh_device_name({1, 1}), "N150");
  EXPECT_EQ(mesh_device_name({2, 1}), "N300");
  EXPECT_EQ(mesh_device_name({8, 1}), "T3K");
  EXPECT_EQ(mesh_device_name({8, 4}), "TG");
  EXPECT_EQ(mesh_device_name({2, 2}), "");
  EXPECT_EQ(mesh_device_name({1, 2}), "");
  EXPECT_EQ(mesh_device_name({4, 8}), "");
}

TEST(DistCheckWorldFits, NamesTheMpirunCommandThatFits) {
  EXPECT_NO_THROW(check_world_fits({8, 1}, 8));
  EXPECT_NO_THROW(check_world_fits({2, 2}, 4));
  EXPECT_NO_THROW(check_world_fits({1, 1}, 1));
  EXPECT_EQ(error_of([] { check_world_fits({8, 1}, 2); }),
            "mesh T3K (8x1) needs 8 ranks: run it as `mpirun -np 8 llama3 ...`; this run has 2");
  const std::string tg = error_of([] { check_world_fits({8, 4}, 8); });
  EXPECT_NE(tg.find("TG (8x4) needs 32 ranks"), std::string::npos) << tg;
  EXPECT_NE(tg.find("mpirun -np 32"), std::string::npos) << tg;
  const std::string other = error_of([] { check_world_fits({2, 2}, 1); });
  EXPECT_NE(other.find("mesh 2x2 needs 4 ranks"), std::string::npos) << other;
  EXPECT_NE(other.find("mpirun -np 4"), std::string::npos) << other;
  EXPECT_NE(error_of([] { check_world_fits({1, 1}, 2); }).find("mpirun -np 1 "), std::string::npos);
}

TEST(DistPlaceInMesh, TensorGroupsAreConsecutiveRanks) {
  const MeshShape mesh{8, 4};
  const MeshPlace p = place_in_mesh(mesh, 13);
  EXPECT_EQ(p.tensor_rank, 5);
  EXPECT_EQ(p.tensor_size, 8);
  EXPECT_EQ(p.data_group, 1);
  EXPECT_EQ(p.data_groups, 4);

  // Every (group, tensor rank) exactly once.
  std::set<std::pair<int, int>> seen;
  for (int r = 0; r < mesh.ranks(); ++r) {
    const MeshPlace q = place_in_mesh(mesh, r);
    EXPECT_EQ(q.data_group * mesh.tensor + q.tensor_rank, r);
    seen.insert({q.data_group, q.tensor_rank});
  }
  EXPECT_EQ(seen.size(), 32u);

  const MeshPlace alone = place_in_mesh({1, 1}, 0);
  EXPECT_EQ(alone.tensor_rank, 0);
  EXPECT_EQ(alone.tensor_size, 1);
  EXPECT_EQ(alone.data_group, 0);
  EXPECT_EQ(alone.data_groups, 1);
  EXPECT_EQ(place_in_mesh({1, 3}, 2).data_group, 2);
  EXPECT_EQ(place_in_mesh({1, 3}, 2).tensor_rank, 0);
}

TEST(DistPlaceInMesh, RanksOutsideTheMeshAreRefused) {
  EXPECT_THROW(place_in_mesh({2, 2}, 4), Error);
  EXPECT_THROW(place_in_mesh({2, 2}, -1), Error);
}

}  // namespace
}  // namespace llama3::dist
