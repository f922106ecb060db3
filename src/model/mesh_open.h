#pragma once
// Opening a model on a mesh (ModelRequest::mesh with more than one rank, under mpirun): rank 0
// of a tensor group (world rank 0; on a mesh of D data-parallel groups, each group's first rank)
// sends the request to its group's other ranks (mesh_jobs.h), every rank builds its share, they
// agree that all succeeded, and the leader's model leads the others' passes. The other ranks
// run follow_leader() instead of the command.
// A checkpoint: every rank maps its own copy at the path rank 0 resolved (or at
// $LLAMA3_LOCAL_MODEL_DIR where a machine keeps it elsewhere) and reads only its slices; a copy
// whose files differ from rank 0's (names, sizes, headers) is refused before anything is loaded.
#include <string>

#include "dist/communicator.h"
#include "model/model_factory.h"

namespace llama3::model {

std::string request_to_json(const ModelRequest& request);
ModelRequest request_from_json(const std::string& json);  // throws llama3::Error on bad JSON

// This rank's share of the model in `request` (a checkpoint or random weights) on `group`: a
// mesh's tensor group, or a dist::SoloCommunicator to time one rank's share alone.
OpenedModel open_share(const ModelRequest& request, dist::Communicator& group);

// Rank 0's side (open_model calls it for a mesh of more than one rank).
OpenedModel open_on_mesh(const ModelRequest& request);

// A follower's life (a rank other than 0 of its tensor group in the job mesh,
// dist::job_mesh): open each model its group's leader opens and run its passes, until the
// leader ends the job (end_followers). Returns the process's exit code.
int follow_leader();

// A group's leader, at the end of its command: its followers return from follow_leader.
void end_followers();

}  // namespace llama3::model
