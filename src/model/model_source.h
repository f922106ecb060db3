#pragma once
// Where the weights come from, as in the original demo: LLAMA_DIR=<Meta folder> or
// HF_MODEL=<Hugging Face folder, or a repo id resolved offline in the Hugging Face cache>;
// an explicit --model_dir overrides both.
#include <filesystem>
#include <optional>
#include <string>

namespace llama3::model {

// The model folder to load, or nullopt when none is configured. Throws when LLAMA_DIR and
// HF_MODEL are both set, or when the named folder / cached repo does not exist.
std::optional<std::filesystem::path> resolve_model_dir(const std::optional<std::string>& model_dir_flag);

// A repo id such as meta-llama/Llama-3.2-1B-Instruct in the Hugging Face cache
// ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub): the snapshot that
// refs/main names, else the only snapshot.
std::filesystem::path resolve_hf_repo_id(const std::string& repo_id);

}  // namespace llama3::model
