#include "runtime/data_files.h"

#include <dlfcn.h>

#include <cstdlib>
#include <system_error>

namespace llama3::runtime {

namespace fs = std::filesystem;

namespace {

// <prefix>/share/llama3 next to `file`'s <prefix>/bin or <prefix>/lib, if present.
fs::path installed_beside(const fs::path& file) {
  std::error_code ec;
  const fs::path dir = fs::weakly_canonical(file, ec).parent_path().parent_path() / "share" / "llama3";
  return !ec && fs::is_directory(dir, ec) ? dir : fs::path();
}

fs::path find_data_dir() {
  if (const char* env = std::getenv("LLAMA3_DATA_DIR"); env && *env) return env;
  // The shared library (an embedding program) or the binary (the CLI) holding this function.
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(&find_data_dir), &info) != 0 && info.dli_fname) {
    if (fs::path dir = installed_beside(info.dli_fname); !dir.empty()) return dir;
  }
  std::error_code ec;
  if (const fs::path exe = fs::read_symlink("/proc/self/exe", ec); !ec) {
    if (fs::path dir = installed_beside(exe); !dir.empty()) return dir;
  }
  return LLAMA3_SOURCE_DIR;
}

}  // namespace

fs::path data_dir() {
  static const fs::path dir = find_data_dir();
  return dir;
}

fs::path data_file(std::string_view relative) {
  const fs::path dir = data_dir();
  const fs::path rel(relative);
  // The source tree keeps the tokenizer where scripts/setup.sh fetched it (git-ignored).
  if (dir == fs::path(LLAMA3_SOURCE_DIR) && !rel.empty() && *rel.begin() == "tokenizer") {
    return dir / ".cache" / rel;
  }
  return dir / rel;
}

}  // namespace llama3::runtime
