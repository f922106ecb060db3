// Loader for Hugging Face's tokenizer.json (+ tokenizer_config.json) of a Llama 3 model.
#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <unordered_map>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/tokenizer_data.h"

namespace llama3::tokenizer {

namespace {

using nlohmann::json;

// The pre-tokenizer regex this library implements (pretokenizer.h); any other is refused
// rather than silently tokenized differently.
constexpr std::string_view kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// GPT-2's byte-level alphabet: printable bytes stand for themselves, the others are shifted to
// U+0100 and up, so every token is printable text in the JSON. Maps code point -> byte.
std::unordered_map<uint32_t, unsigned char> byte_level_decoder() {
  std::unordered_map<uint32_t, unsigned char> map;
  uint32_t shifted = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    map[printable ? static_cast<uint32_t>(b) : shifted++] = static_cast<unsigned char>(b);
  }
  return map;
}

std::string decode_byte_level(const std::string& token, const std::string& path) {
  static const auto decoder = byte_level_decoder();
  std::string out;
  out.reserve(token.size());
  const auto* p = reinterpret_cast<const unsigned char*>(token.data());
  for (size_t i = 0; i < token.size();) {
    uint32_t cp = p[i];
    size_t len = 1;
    if (cp >= 0xC0 && cp < 0xE0 && i + 1 < token.size()) {
      cp = ((cp & 0x1F) << 6) | (p[i + 1] & 0x3F);
      len = 2;
    }
    const auto it = decoder.find(cp);
    check(it != decoder.end(), "{}: vocab token '{}' is not byte-level BPE text", path, token);
    out.push_back(static_cast<char>(it->second));
    i += len;
  }
  return out;
}

const json& member(const json& object, const char* key, const std::string& where) {
  check(object.is_object() && object.contains(key), "{}: missing \"{}\"", where, key);
  return object.at(key);
}

bool has_llama3_split(const json& pre) {
  if (!pre.is_object()) return false;
  const std::string type = pre.value("type", "");
  if (type == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array()) {
    for (const json& p : pre["pretokenizers"]) {
      if (has_llama3_split(p)) return true;
    }
    return false;
  }
  if (type != "Split" || !pre.contains("pattern")) return false;
  const json& pattern = pre["pattern"];
  return pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string() &&
         pattern["Regex"].get<std::string>() == kLlama3Pattern;
}

// The BOS token name from tokenizer_config.json: a string or an AddedToken object.
std::optional<std::string> config_bos_name(const std::filesystem::path& config_path) {
  std::error_code ec;
  if (!std::filesystem::exists(config_path, ec)) return std::nullopt;
  const std::string where = config_path.string();
  json config;
  try {
    config = json::parse(read_file(where, "tokenizer file"));
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", where, e.what());
  }
  check(config.is_object(), "{}: expected a JSON object", where);
  if (!config.contains("bos_token") || config["bos_token"].is_null()) return std::nullopt;
  const json& bos = config["bos_token"];
  if (bos.is_string()) return bos.get<std::string>();
  check(bos.is_object() && bos.contains("content") && bos["content"].is_string(),
        "{}: \"bos_token\" is neither a string nor an object with \"content\"", where);
  return bos["content"].get<std::string>();
}

TokenizerData parse_tokenizer_json(const json& root, const std::string& path) {
  check(root.is_object(), "{}: expected a JSON object", path);
  const json& model = member(root, "model", path);
  const std::string model_where = path + ": model";
  if (model.contains("type")) {
    check(model["type"] == "BPE", "{}: unsupported model type {} (need BPE)", path,
          model["type"].dump());
  }
  check(has_llama3_split(root.value("pre_tokenizer", json())),
        "{}: pre_tokenizer is not the Llama 3 split regex; only Llama 3 tokenizers are supported",
        path);

  const json& vocab = member(model, "vocab", model_where);
  check(vocab.is_object() && !vocab.empty(), "{}: \"vocab\" must be a non-empty object",
        model_where);
  const size_t n = vocab.size();
  std::vector<std::string> tokens(n);
  std::vector<bool> seen(n);
  std::unordered_map<std::string, int32_t> ids;
  ids.reserve(n);
  for (const auto& [text, id_json] : vocab.items()) {
    check(id_json.is_number_integer(), "{}: id of '{}' is not an integer", model_where, text);
    const int64_t id = id_json.get<int64_t>();
    check(id >= 0 && id < static_cast<int64_t>(n) && !seen[id],
          "{}: id {} of '{}' is out of range or repeated (ids must be 0..{})", model_where, id,
          text, n - 1);
    seen[id] = true;
    tokens[id] = decode_byte_level(text, path);
    ids.emplace(text, static_cast<int32_t>(id));
  }

  const json& merges_json = member(model, "merges", model_where);
  check(merges_json.is_array(), "{}: \"merges\" must be an array", model_where);
  std::vector<BpeModel::Merge> merges;
  merges.reserve(merges_json.size());
  for (size_t i = 0; i < merges_json.size(); ++i) {
    const json& m = merges_json[i];
    std::string left, right;
    if (m.is_string()) {  // "left right"
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      check(space != std::string::npos && s.find(' ', space + 1) == std::string::npos,
            "{}: merge {} '{}' is not two tokens separated by a space", model_where, i, s);
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else {  // ["left", "right"]
      check(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
            "{}: merge {} is neither \"a b\" nor [\"a\", \"b\"]", model_where, i);
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    }
    const auto l = ids.find(left), r = ids.find(right), merged = ids.find(left + right);
    check(l != ids.end() && r != ids.end() && merged != ids.end(),
          "{}: merge {} ('{}' + '{}') uses a token missing from the vocab", model_where, i, left,
          right);
    merges.push_back({l->second, r->second, static_cast<int32_t>(i), merged->second});
  }

  TokenizerData data;
  try {
    data.bpe = BpeModel::from_merges(std::move(tokens), merges, model.value("ignore_merges", false));
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }

  // Special tokens: the added tokens past the BPE vocabulary, which must follow it without gaps.
  std::vector<std::string> names;
  if (root.contains("added_tokens")) {
    const json& added = root["added_tokens"];
    check(added.is_array(), "{}: \"added_tokens\" must be an array", path);
    for (const json& t : added) {
      check(t.is_object() && t.contains("id") && t["id"].is_number_integer() &&
                t.contains("content") && t["content"].is_string(),
            "{}: an added token lacks an integer \"id\" or a string \"content\"", path);
      const int64_t id = t["id"].get<int64_t>();
      check(id >= 0, "{}: added token id {} is negative", path, id);
      if (id < static_cast<int64_t>(n)) continue;  // already part of the BPE vocabulary
      const size_t index = static_cast<size_t>(id) - n;
      check(index < (1u << 20), "{}: added token id {} is implausibly large", path, id);
      if (names.size() <= index) names.resize(index + 1);
      check(names[index].empty(), "{}: added token id {} appears twice", path, id);
      names[index] = t["content"].get<std::string>();
      check(!names[index].empty(), "{}: added token {} has empty content", path, id);
    }
  }
  for (size_t i = 0; i < names.size(); ++i) {
    check(!names[i].empty(), "{}: no added token has id {} (special ids must follow the vocab)",
          path, n + i);
  }
  data.special_names = std::move(names);
  return data;
}

}  // namespace

TokenizerData load_hf_tokenizer_file(const std::string& path) {
  json root;
  try {
    root = json::parse(read_file(path, "tokenizer file"));
  } catch (const json::exception& e) {
    fail("{}: invalid JSON (truncated or corrupt tokenizer.json?): {}", path, e.what());
  }
  TokenizerData data;
  try {
    data = parse_tokenizer_json(root, path);
  } catch (const json::exception& e) {  // a value of the wrong JSON type somewhere
    fail("{}: malformed tokenizer.json: {}", path, e.what());
  }
  const auto config = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (auto bos = config_bos_name(config)) data.bos_name = *bos;
  return data;
}

}  // namespace llama3::tokenizer
