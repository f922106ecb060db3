#pragma once
// What rank 0 of a tensor-parallel group tells the other ranks outside the forward passes: open
// a model (the request rank 0 opens, as JSON) and follow its passes, or end. Every command runs
// on rank 0 only; the other ranks run `follow_leader`, so they never parse prompts, print or
// schedule. After opening, the ranks agree: one rank's failure (or a different build of llama3)
// is an error on rank 0 naming the rank, and no rank goes on to the forward passes.
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "dist/communicator.h"

namespace llama3::model {

// Leader side.
void send_open_job(dist::Communicator& group, std::string_view request_json);
void send_end(dist::Communicator& group);

// Follower side: the next job, or nullopt when the leader ends. A job from another build of
// llama3 comes with `mismatch` set: the follower passes it to agree_opened instead of opening.
struct MeshJob {
  std::string request_json;
  std::string mismatch;
};
std::optional<MeshJob> receive_job(dist::Communicator& group);

// What agree_opened throws: every rank knows it, and rank 0 reports it.
class MeshOpenError : public Error {
 public:
  using Error::Error;
};

// Every rank passes what happened when it opened its share ("" for success); on every rank,
// throws MeshOpenError naming the first rank that failed and its message.
void agree_opened(dist::Communicator& group, std::string_view error);

// The identity of this build (version, compiler, build time): ranks must run the same one.
std::string_view build_identity();

}  // namespace llama3::model
