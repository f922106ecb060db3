#pragma once
// Where the engine and the CLI find a tokenizer, shared by everything that encodes or decodes text.
#include <filesystem>
#include <optional>

#include "io/gguf_file.h"
#include "tokenizer/tokenizer.h"

namespace llama3::runtime {

// The explicit path if given; else model_dir/tokenizer.json, model_dir/tokenizer.model or
// model_dir/original/tokenizer.model if a model folder is given and holds one; else the file
// named by the environment variable LLAMA3_TOKENIZER; else the default among the data files
// (runtime/data_files.h: installed, or fetched into the source tree by scripts/setup.sh). Throws llama3::Error with a helpful
// message (mentioning scripts/setup.sh) if the chosen file does not exist.
std::filesystem::path resolve_tokenizer_path(
    const std::optional<std::filesystem::path>& explicit_path,
    const std::optional<std::filesystem::path>& model_dir);

// The tokenizer a command uses: the explicit file if given; else, for a GGUF model, the
// vocabulary inside the GGUF file (tokenizer.ggml.*); else the file resolve_tokenizer_path finds.
tokenizer::Tokenizer load_tokenizer(const std::optional<std::filesystem::path>& explicit_path,
                                    const std::optional<std::filesystem::path>& model_dir);

// The vocabulary arrays of a GGUF file's tokenizer.ggml.* keys (views into `file`).
tokenizer::VocabArrays gguf_vocab_arrays(const io::GgufFile& file);

}  // namespace llama3::runtime
