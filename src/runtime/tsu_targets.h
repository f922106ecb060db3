#pragma once
// Expected decode speed, in tokens per second per user (TSU), for a (model, layers, batch,
// optimizations) configuration, read from demo/tsu_targets.json, and the check of a run
// against it. Format (demo/README.md): a JSON list of
//   {"model": str, "layers": int, "batch": int, "optimizations": str,
//    "min_tsu": number, "max_tsu": number, "note": str (optional)}
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llama3::runtime {

struct TsuTarget {
  std::string model;
  int layers = 0;
  int batch = 0;
  std::string optimizations;
  double min_tsu = 0.0;
  double max_tsu = 0.0;
};

// Throws llama3::Error naming the file (and entry index) if it cannot be read, is not valid
// JSON, is not a list, or an entry has a missing/unknown key, a wrong type, layers or batch < 1,
// min_tsu < 0, min_tsu > max_tsu, or repeats an earlier entry's key. An empty list is valid.
std::vector<TsuTarget> load_tsu_targets(const std::filesystem::path& path);

// The entry matching all four fields exactly, if any.
std::optional<TsuTarget> find_tsu_target(std::span<const TsuTarget> table, std::string_view model,
                                         int layers, int batch, std::string_view optimizations);

struct TsuCheck {
  int outside = 0;  // iterations whose TSU is outside [min_tsu, max_tsu] (NaN counts as outside)
  int total = 0;
  bool passed = false;  // outside <= allowed_outside
};

// Throws llama3::Error if allowed_outside < 0.
TsuCheck check_tsu(const TsuTarget& target, std::span<const double> per_iteration_tsu,
                   int allowed_outside = 20);

}  // namespace llama3::runtime
