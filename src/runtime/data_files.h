#pragma once
// Where llama3 finds its data files (the default tokenizer, the demo's prompts, texts and
// targets). An installed copy keeps them in <prefix>/share/llama3, found relative to the binary
// or to the shared library that holds this code, so an installed tree works wherever it is moved;
// a build that was never installed uses the source tree it was built from.
#include <filesystem>
#include <string_view>

namespace llama3::runtime {

// The folder holding tokenizer/ and demo/: $LLAMA3_DATA_DIR if set; else <dir of the binary or
// library>/../share/llama3 if it exists; else the source tree's layout (demo/ and
// .cache/tokenizer/), which data_file() maps to.
std::filesystem::path data_dir();

// A data file by its installed relative path, e.g. "demo/prompts/questions_128.json" or
// "tokenizer/tokenizer.json" (not checked for existence).
std::filesystem::path data_file(std::string_view relative);

}  // namespace llama3::runtime
