#include "model/mesh_open.h"

#include <fmt/format.h>

#include <new>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/timer.h"
#include "dist/process_mesh.h"
#include "model/mesh_jobs.h"
#include "model/random_weights.h"
#include "model/shard_plan.h"

namespace llama3::model {

using nlohmann::json;

namespace {

template <typename T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

template <typename T>
std::optional<T> optional_from(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<T>();
}

// What opening a share threw, as the message agree_opened passes to every rank ("" for none).
template <typename Fn>
std::string open_error(Fn&& open) {
  try {
    open();
    return "";
  } catch (const std::bad_alloc&) {
    return "out of memory";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

OpenedModel open_share(const ModelRequest& request, dist::Communicator& group) {
  const Timer timer;
  const ModelPlan plan = plan_model(request);
  check(!plan.dir,
        "a checkpoint cannot be loaded onto a mesh yet (each rank would need to read its slices of {}); "
        "--weights random runs on any mesh",
        plan.dir ? plan.dir->string() : "");
  const ShardPlan shard = shard_plan(plan.config, group.rank(), group.size());
  OpenedModel out;
  out.precision = plan.precision;
  out.weights = "random";
  out.format = "random";
  out.cache = fmt::format("off (a mesh's ranks generate their shares; {})", shard.describe());
  out.model = std::make_unique<LlamaModel>(plan.config, random_weights(plan.config, request.seed, plan.precision, shard),
                                           &group);
  out.load_seconds = timer.seconds();
  return out;
}

std::string request_to_json(const ModelRequest& r) {
  return json{{"preset", r.preset},
              {"weights", optional_json(r.weights)},
              {"layers", optional_json(r.layers)},
              {"model_dir", optional_json(r.model_dir)},
              {"seed", r.seed},
              {"optimizations", optional_json(r.optimizations)},
              {"precision", optional_json(r.precision)},
              {"kv_cache", optional_json(r.kv_cache)},
              {"weight_cache", r.weight_cache},
              {"mesh", r.mesh}}
      .dump();
}

ModelRequest request_from_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    ModelRequest r;
    r.preset = j.at("preset").get<std::string>();
    r.weights = optional_from<std::string>(j, "weights");
    r.layers = optional_from<int64_t>(j, "layers");
    r.model_dir = optional_from<std::string>(j, "model_dir");
    r.seed = j.at("seed").get<uint64_t>();
    r.optimizations = optional_from<std::string>(j, "optimizations");
    r.precision = optional_from<std::string>(j, "precision");
    r.kv_cache = optional_from<std::string>(j, "kv_cache");
    r.weight_cache = j.at("weight_cache").get<bool>();
    r.mesh = j.at("mesh").get<std::string>();
    return r;
  } catch (const json::exception& e) {
    throw Error(fmt::format("mesh: a model request that does not parse: {}", e.what()));
  }
}

OpenedModel open_on_mesh(const ModelRequest& request) {
  const dist::MeshShape mesh = dist::parse_mesh(request.mesh);
  check(mesh.data == 1,
        "mesh {}: data-parallel groups (TxD with D > 1) are not supported yet; run a tensor-parallel mesh Tx1",
        mesh.name());
  // Every rank creates the world's and then the group's communicators (collective calls, in the
  // same order on every rank); a mesh the world does not fit is refused before any job is sent.
  dist::Communicator& world = dist::world();
  dist::check_world_fits(mesh, world.size());
  send_open_job(world, request_to_json(request));
  dist::Communicator& group = dist::tensor_group(mesh);
  OpenedModel out;
  agree_opened(world, open_error([&] { out = open_share(request, group); }));
  out.model->lead();
  return out;
}

int follow_leader() {
  dist::Communicator& world = dist::world();
  while (const std::optional<MeshJob> job = receive_job(world)) {
    std::optional<OpenedModel> opened;
    const std::string error = !job->mismatch.empty() ? job->mismatch : open_error([&] {
      const ModelRequest request = request_from_json(job->request_json);
      opened = open_share(request, dist::tensor_group(dist::parse_mesh(request.mesh)));
    });
    agree_opened(world, error);  // throws on every rank when one failed
    opened->model->follow();
  }
  return 0;
}

void end_followers() {
  if (dist::in_mpi_job() && dist::world_rank() == 0) send_end(dist::world());
}

}  // namespace llama3::model
