#pragma once
// Reading a whole (small) file: prompt files, configs, tokenizer files, tables. Weights are
// memory-mapped instead (mapped_file.h).
#include <filesystem>
#include <string>
#include <string_view>

namespace llama3 {

// The file's bytes. Throws llama3::Error "cannot read <what> '<path>': <reason>" when it is
// missing, not a regular file, cannot be opened, or a read fails.
std::string read_file(const std::filesystem::path& path, std::string_view what);

}  // namespace llama3
