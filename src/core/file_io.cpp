#include "core/file_io.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace llama3 {

std::string read_file(const std::filesystem::path& path, std::string_view what) {
  std::error_code ec;
  check(std::filesystem::exists(path, ec), "cannot read {} '{}': no such file", what, path.string());
  check(std::filesystem::is_regular_file(path, ec), "cannot read {} '{}': not a regular file", what, path.string());
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), "cannot read {} '{}': cannot open it", what, path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  check(!in.bad(), "cannot read {} '{}': read error", what, path.string());
  return std::move(ss).str();
}

}  // namespace llama3
