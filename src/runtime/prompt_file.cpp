#include "runtime/prompt_file.h"

#include <nlohmann/json.hpp>


#include "core/error.h"
#include "core/file_io.h"
#include "runtime/url_cache.h"
#include "tokenizer/utf8.h"

namespace llama3::runtime {

namespace fs = std::filesystem;

namespace {

bool has_prefix_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    const char c = s[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != prefix[i]) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// file:///abs/path or file://localhost/abs/path -> /abs/path, percent-escapes decoded.
fs::path file_url_path(const std::string& url) {
  std::string_view rest = std::string_view(url).substr(7);  // after "file://"
  if (has_prefix_nocase(rest, "localhost/")) rest.remove_prefix(9);
  check(!rest.empty() && rest[0] == '/',
        "context '{}': a file:// URL needs an absolute path (file:///path/to/file)", url);
  std::string path;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != '%') {
      path += rest[i];
      continue;
    }
    const int hi = i + 2 < rest.size() ? hex_value(rest[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(rest[i + 2]) : -1;
    check(lo >= 0, "context '{}': bad percent-escape at character {}", url, i + 7);
    path += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return fs::path(path);
}

std::string load_context(const std::string& context, const fs::path& base_dir,
                         const fs::path& cache_dir, std::string& warning) {
  if (has_prefix_nocase(context, "http://") || has_prefix_nocase(context, "https://")) {
    CachedFetch fetched = fetch_url_cached(context, cache_dir);
    warning = fetched.warning;
    return std::move(fetched.body);
  }
  if (has_prefix_nocase(context, "file://")) {
    return read_file(file_url_path(context), "context file");
  }
  const size_t scheme_end = context.find("://");
  check(scheme_end == std::string::npos || context.find('/') < scheme_end,
        "context '{}': unsupported URL scheme (use a path, file://, http:// or https://)",
        context);
  const fs::path path(context);
  return read_file(path.is_absolute() ? path : base_dir / path, "context file");
}

}  // namespace

std::string_view clip_code_points(std::string_view text, size_t max_code_points) {
  size_t count = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    // A code point starts at every byte that is not a continuation byte (10xxxxxx).
    if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80) {
      if (count == max_code_points) return text.substr(0, i);
      ++count;
    }
  }
  return text;
}

std::vector<PromptSpec> load_prompt_file(const fs::path& path) {
  const std::string file = path.string();
  const std::string content = read_file(path, "prompt file");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(content);
  } catch (const nlohmann::json::exception& e) {
    fail("prompt file '{}': invalid JSON: {}", file, e.what());
  }
  check(doc.is_array(), "prompt file '{}': expected a JSON list of prompts, got {}", file,
        doc.type_name());
  check(!doc.empty(), "prompt file '{}': the list of prompts is empty", file);
  std::vector<PromptSpec> specs;
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& entry = doc[i];
    check(entry.is_object(), "prompt file '{}': entry [{}]: expected an object, got {}", file, i,
          entry.type_name());
    PromptSpec spec;
    bool has_prompt = false;
    for (const auto& [key, value] : entry.items()) {
      if (key == "prompt" || key == "context" || key == "image") {
        check(value.is_string(), "prompt file '{}': entry [{}]: '{}' must be a string, got {}",
              file, i, key, value.type_name());
        (key == "prompt" ? spec.prompt : key == "context" ? spec.context : spec.image) = value.get<std::string>();
        has_prompt |= key == "prompt";
      } else if (key == "max_length") {
        check(value.is_number_integer() && value.get<int64_t>() >= -1,
              "prompt file '{}': entry [{}]: 'max_length' must be an integer >= -1 (-1 = no "
              "limit), got {}",
              file, i, value.dump());
        spec.max_length = value.get<int64_t>();
      } else {
        fail("prompt file '{}': entry [{}]: unknown key '{}' (expected prompt, context, "
             "max_length, image)",
             file, i, key);
      }
    }
    check(has_prompt, "prompt file '{}': entry [{}]: 'prompt' is missing", file, i);
    check(!spec.prompt.empty(), "prompt file '{}': entry [{}]: 'prompt' is empty", file, i);
    specs.push_back(std::move(spec));
  }
  return specs;
}

ResolvedPrompt resolve_prompt(const PromptSpec& spec, const fs::path& base_dir,
                              const fs::path& cache_dir) {
  ResolvedPrompt result;
  if (!spec.image.empty()) {
    try {  // bytes as they are: the engine decodes (and refuses) them
      std::string warning;
      result.image = load_context(spec.image, base_dir, cache_dir, warning);
      result.warning = warning;
    } catch (const std::exception& e) {
      result.error = fmt::format("image: {}", e.what());
      return result;
    }
  }
  if (spec.context.empty()) {
    result.text = spec.prompt;
    return result;
  }
  try {
    std::string context = load_context(spec.context, base_dir, cache_dir, result.warning);
    std::string_view text = context;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // byte order mark
    const size_t bad = tokenizer::utf8::first_invalid(text);
    check(bad == std::string_view::npos, "context '{}' is not valid UTF-8 (byte {})",
          spec.context, bad);
    if (spec.max_length >= 0) text = clip_code_points(text, static_cast<size_t>(spec.max_length));
    // An empty (or clipped to nothing) context adds nothing, not even the separator.
    result.text = text.empty() ? spec.prompt : std::string(text) + "\n\n" + spec.prompt;
  } catch (const std::exception& e) {  // llama3::Error, and filesystem or allocation failures
    result.text.clear();
    result.error = e.what();
  }
  return result;
}

}  // namespace llama3::runtime
