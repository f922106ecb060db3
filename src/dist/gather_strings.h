#pragma once
// Every rank's string, in rank order, on every rank of a group: one all-gather of the lengths,
// then one of the strings padded to the longest (the communicator's all-gather takes pieces of
// one size). For results a few ranks exchange once, not for the forward pass.
#include <string>
#include <vector>

#include "dist/communicator.h"

namespace llama3::dist {

std::vector<std::string> all_gather_strings(Communicator& group, const std::string& mine);

}  // namespace llama3::dist
