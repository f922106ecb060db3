#include "model/model_source.h"

#include <cstdlib>
#include <fstream>
#include <vector>

#include "core/error.h"

namespace llama3::model {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

fs::path hf_cache_root() {
  if (auto hub = env("HF_HUB_CACHE")) return *hub;
  if (auto home = env("HF_HOME")) return fs::path(*home) / "hub";
  if (auto home = env("HOME")) return fs::path(*home) / ".cache" / "huggingface" / "hub";
  fail("cannot locate the Hugging Face cache: set HF_HOME or HF_HUB_CACHE");
}

}  // namespace

fs::path resolve_hf_repo_id(const std::string& repo_id) {
  const auto slash = repo_id.find('/');
  check(slash != std::string::npos && slash > 0 && slash + 1 < repo_id.size() &&
            repo_id.find('/', slash + 1) == std::string::npos,
        "HF_MODEL={} is neither a folder nor a repo id of the form org/name", repo_id);
  const fs::path repo = hf_cache_root() / ("models--" + repo_id.substr(0, slash) + "--" + repo_id.substr(slash + 1));
  check(fs::is_directory(repo / "snapshots"), "HF_MODEL={}: not in the Hugging Face cache ({} does not exist); "
        "this engine never downloads: fetch it with huggingface-cli first", repo_id, (repo / "snapshots").string());
  std::ifstream ref(repo / "refs" / "main");
  std::string revision;
  if (ref && std::getline(ref, revision) && fs::is_directory(repo / "snapshots" / revision)) {
    return repo / "snapshots" / revision;
  }
  std::vector<fs::path> snapshots;
  for (const auto& e : fs::directory_iterator(repo / "snapshots")) {
    if (e.is_directory()) snapshots.push_back(e.path());
  }
  check(snapshots.size() == 1, "HF_MODEL={}: {} snapshots in {} and no refs/main to choose one", repo_id,
        snapshots.size(), (repo / "snapshots").string());
  return snapshots.front();
}

std::optional<fs::path> resolve_model_dir(const std::optional<std::string>& model_dir_flag) {
  fs::path dir;
  if (model_dir_flag) {
    dir = *model_dir_flag;
  } else {
    const auto llama_dir = env("LLAMA_DIR");
    const auto hf_model = env("HF_MODEL");
    check(!(llama_dir && hf_model), "both LLAMA_DIR ({}) and HF_MODEL ({}) are set; set only one", *llama_dir,
          *hf_model);
    if (llama_dir) {
      dir = *llama_dir;
    } else if (hf_model) {
      dir = fs::exists(*hf_model) ? fs::path(*hf_model) : resolve_hf_repo_id(*hf_model);
    } else {
      return std::nullopt;
    }
  }
  check(fs::is_directory(dir) || (fs::is_regular_file(dir) && dir.extension() == ".gguf"),
        "model folder or .gguf file {} does not exist", dir.string());
  return dir;
}

}  // namespace llama3::model
