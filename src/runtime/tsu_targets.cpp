#include "runtime/tsu_targets.h"

#include <nlohmann/json.hpp>

#include <climits>
#include <set>
#include <tuple>

#include "core/error.h"
#include "core/file_io.h"

namespace llama3::runtime {

namespace {

const char* const kKeys = "model, layers, batch, optimizations, min_tsu, max_tsu, note";
const std::set<std::string, std::less<>> kKnownKeys = {"model",   "layers",  "batch", "optimizations",
                                                       "min_tsu", "max_tsu", "note"};

}  // namespace

std::vector<TsuTarget> load_tsu_targets(const std::filesystem::path& path) {
  const std::string file = path.string();
  const std::string content = read_file(path, "TSU targets file");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(content);
  } catch (const nlohmann::json::exception& e) {
    fail("TSU targets '{}': invalid JSON: {}", file, e.what());
  }
  check(doc.is_array(), "TSU targets '{}': expected a JSON list, got {}", file, doc.type_name());
  std::vector<TsuTarget> table;
  std::set<std::tuple<std::string, int, int, std::string>> seen;
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& e = doc[i];
    check(e.is_object(), "TSU targets '{}': entry [{}]: expected an object, got {}", file, i,
          e.type_name());
    for (const auto& [key, value] : e.items()) {
      check(kKnownKeys.count(key) == 1,
            "TSU targets '{}': entry [{}]: unknown key '{}' (expected {})", file, i, key, kKeys);
    }
    const auto string_field = [&](const char* key, bool required) {
      if (!e.contains(key)) {
        check(!required, "TSU targets '{}': entry [{}]: '{}' is missing", file, i, key);
        return std::string();
      }
      check(e[key].is_string() && !e[key].get<std::string>().empty(),
            "TSU targets '{}': entry [{}]: '{}' must be a non-empty string", file, i, key);
      return e[key].get<std::string>();
    };
    const auto int_field = [&](const char* key) {
      check(e.contains(key), "TSU targets '{}': entry [{}]: '{}' is missing", file, i, key);
      const auto& v = e[key];
      check(v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= INT_MAX,
            "TSU targets '{}': entry [{}]: '{}' must be an integer >= 1, got {}", file, i, key,
            v.dump());
      return v.get<int>();
    };
    const auto number_field = [&](const char* key) {
      check(e.contains(key), "TSU targets '{}': entry [{}]: '{}' is missing", file, i, key);
      const auto& v = e[key];
      check(v.is_number() && v.get<double>() >= 0.0,
            "TSU targets '{}': entry [{}]: '{}' must be a number >= 0, got {}", file, i, key,
            v.dump());
      return v.get<double>();
    };
    TsuTarget t;
    t.model = string_field("model", true);
    t.layers = int_field("layers");
    t.batch = int_field("batch");
    t.optimizations = string_field("optimizations", true);
    t.min_tsu = number_field("min_tsu");
    t.max_tsu = number_field("max_tsu");
    string_field("note", false);  // free text, checked for type only
    check(t.min_tsu <= t.max_tsu, "TSU targets '{}': entry [{}]: min_tsu {} > max_tsu {}", file,
          i, t.min_tsu, t.max_tsu);
    check(seen.insert({t.model, t.layers, t.batch, t.optimizations}).second,
          "TSU targets '{}': entry [{}]: a second entry for model '{}', {} layers, batch {}, "
          "optimizations '{}'",
          file, i, t.model, t.layers, t.batch, t.optimizations);
    table.push_back(std::move(t));
  }
  return table;
}

std::optional<TsuTarget> find_tsu_target(std::span<const TsuTarget> table, std::string_view model,
                                         int layers, int batch, std::string_view optimizations) {
  for (const auto& t : table) {
    if (t.model == model && t.layers == layers && t.batch == batch &&
        t.optimizations == optimizations) {
      return t;
    }
  }
  return std::nullopt;
}

TsuCheck check_tsu(const TsuTarget& target, std::span<const double> per_iteration_tsu,
                   int allowed_outside) {
  check(allowed_outside >= 0, "TSU check: allowed_outside must be >= 0, got {}", allowed_outside);
  TsuCheck result;
  result.total = static_cast<int>(per_iteration_tsu.size());
  for (const double v : per_iteration_tsu) {
    if (!(v >= target.min_tsu && v <= target.max_tsu)) ++result.outside;  // NaN: outside
  }
  result.passed = result.outside <= allowed_outside;
  return result;
}

}  // namespace llama3::runtime
