#pragma once
// The demo's prompt files: a JSON list of {"prompt": str, "context": str, "max_length": int,
// "image": str} (image: a vision model's PNG or JPEG, from the same places as a context),
// and turning one entry into the text a user sends (see demo/README.md for the format).
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace llama3::runtime {

struct PromptSpec {
  std::string prompt;
  std::string context;       // optional: local path, file:// URL or http(s):// URL
  int64_t max_length = -1;   // context clipped to this many Unicode code points; -1 = whole
  std::string image;         // optional: a PNG/JPEG for a vision model, found as a context is
};

struct ResolvedPrompt {
  std::string text;     // context + "\n\n" + prompt (just the prompt without a context)
  std::string error;    // non-empty if the context could not be loaded (text is then empty)
  std::string warning;  // non-empty for a problem that did not stop it (download not cached)
  std::string image;    // the image file's bytes (spec.image given), decoded by the engine
};

// Reads a prompt file. Throws llama3::Error naming the file (and the entry's 0-based index) if
// it cannot be read, is not valid JSON, is not a non-empty list of objects, or an entry has an
// unknown key, no "prompt", an empty prompt, a value of the wrong type, or max_length < -1.
std::vector<PromptSpec> load_prompt_file(const std::filesystem::path& path);

// Loads the entry's context and prepends it to the prompt. `context` may be
//  - a path, relative to base_dir (the prompt file's folder) unless absolute;
//  - a file:// URL with an absolute path (file:///abs/path or file://localhost/abs/path,
//    percent-escapes decoded);
//  - an http:// or https:// URL, downloaded once and cached under cache_dir (url_cache.h).
// The context must be UTF-8 (a leading byte order mark is dropped); it is clipped to
// max_length code points when max_length >= 0, never splitting a character. Problems with the
// context are returned in `error`, never thrown, so one bad entry does not stop the others.
ResolvedPrompt resolve_prompt(const PromptSpec& spec, const std::filesystem::path& base_dir,
                              const std::filesystem::path& cache_dir);

// The longest prefix of valid UTF-8 `text` holding at most max_code_points code points.
std::string_view clip_code_points(std::string_view text, size_t max_code_points);

}  // namespace llama3::runtime
