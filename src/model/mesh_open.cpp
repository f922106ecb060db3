#include "model/mesh_open.h"

#include <fmt/format.h>

#include <cstdlib>
#include <new>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/parallel.h"
#include "dist/process_mesh.h"
#include "model/checkpoint_identity.h"
#include "model/mesh_jobs.h"

namespace llama3::model {

namespace fs = std::filesystem;
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

// Rank 0's checkpoint files (names, sizes, header hashes) for the job it sends.
json files_json(const std::filesystem::path& dir) {
  json out = json::array();
  for (const CheckpointFile& f : checkpoint_files(dir)) out.push_back({f.name, f.size, f.head_hash});
  return out;
}

// Each rank maps its own copy of the checkpoint: a copy that differs from rank 0's would compute
// garbage without an error, so a follower compares its files with those rank 0 sent.
void check_same_checkpoint(const json& job, const ModelRequest& request) {
  if (!job.contains("checkpoint_files") || !request.model_dir) return;
  std::vector<CheckpointFile> leader;
  for (const json& f : job.at("checkpoint_files")) {
    leader.push_back({f.at(0).get<std::string>(), f.at(1).get<uint64_t>(), f.at(2).get<std::string>()});
  }
  std::vector<CheckpointFile> ours;
  try {
    ours = checkpoint_files(*request.model_dir);
  } catch (const std::exception& e) {
    fail("it cannot read the checkpoint {} that rank 0 loads: {}", *request.model_dir, e.what());
  }
  const std::string difference = checkpoint_difference(leader, ours);
  check(difference.empty(), "its copy of the checkpoint {} differs from rank 0's: {}", *request.model_dir, difference);
}

}  // namespace

OpenedModel open_share(const ModelRequest& request, dist::Communicator& group) {
  return open_local(request, plan_model(request), {group.rank(), group.size()}, &group);
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
              {"mesh", r.mesh},
              {"threads", r.threads},
              {"mesh_payload", r.mesh_payload}}
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
    r.threads = j.value("threads", 0);
    r.mesh_payload = j.value("mesh_payload", "fp32");
    return r;
  } catch (const json::exception& e) {
    throw Error(fmt::format("mesh: a model request that does not parse: {}", e.what()));
  }
}

OpenedModel open_on_mesh(const ModelRequest& request) {
  const dist::MeshShape mesh = dist::parse_mesh(request.mesh);
  check(!dist::in_mpi_job() || mesh == dist::job_mesh(),
        "mesh {}: this job runs mesh {} (every rank reads it from the same command line)", mesh.name(),
        dist::job_mesh().name());
  // This rank leads its tensor group (one of the mesh's data-parallel groups); outside an MPI
  // job this is where a mesh of more than one rank is refused with the mpirun it needs.
  dist::Communicator& group = dist::tensor_group(mesh);
  // The followers load the checkpoint this rank resolved (LLAMA_DIR or HF_MODEL need not be set
  // on every machine), and check their copy against its files.
  const ModelPlan plan = plan_model(request);
  ModelRequest sent = request;
  if (plan.dir) sent.model_dir = fs::absolute(*plan.dir).string();
  json job = json::parse(request_to_json(sent));
  if (plan.dir) job["checkpoint_files"] = files_json(*plan.dir);
  send_open_job(group, job.dump());
  // First every rank takes the job (same build, its copy of the checkpoint checked), then every
  // rank opens its share, and they agree that all did.
  agree_opened(group, "");
  OpenedModel out;
  agree_opened(group, open_error([&] { out = open_local(sent, plan, {group.rank(), group.size()}, &group); }));
  out.model->lead();
  return out;
}

int follow_leader() {
  dist::Communicator& group = dist::tensor_group(dist::job_mesh());
  while (const std::optional<MeshJob> job = receive_job(group)) {
    ModelRequest request;
    const std::string taken = !job->mismatch.empty() ? job->mismatch : open_error([&] {
      request = request_from_json(job->request_json);
      // A machine that keeps its copy of the checkpoint elsewhere says where.
      if (const char* local = std::getenv("LLAMA3_LOCAL_MODEL_DIR"); local && *local && request.model_dir) {
        request.model_dir = local;
      }
      check_same_checkpoint(json::parse(job->request_json), request);
    });
    agree_opened(group, taken);  // throws on every rank when one cannot take the job
    if (request.threads > 0) set_thread_count(request.threads);
    std::optional<OpenedModel> opened;
    agree_opened(group, open_error([&] { opened = open_share(request, group); }));
    opened->model->follow();
  }
  return 0;
}

void end_followers() {
  if (dist::in_mpi_job() && dist::job_place().tensor_rank == 0) send_end(dist::tensor_group(dist::job_mesh()));
}

}  // namespace llama3::model
