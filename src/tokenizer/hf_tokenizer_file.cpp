// Loader for Hugging Face's tokenizer.json (+ tokenizer_config.json) of a Llama 3 model.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/byte_level_vocab.h"
#include "tokenizer/tokenizer_data.h"

namespace llama3::tokenizer {

namespace {

using nlohmann::json;

// The pre-tokenizer regex this library implements (pretokenizer.h); any other is refused
// rather than silently tokenized differently.
constexpr std::string_view kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

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

// What the tokenizer keeps of tokenizer_config.json.
struct TokenizerConfig {
  std::optional<std::string> bos, eos, pad;  // token names
  std::string chat_template;
};

// A token the config names: a string, an AddedToken object or null.
std::optional<std::string> config_token(const json& config, const char* key,
                                        const std::string& where) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const json& token = config[key];
  if (token.is_string()) return token.get<std::string>();
  check(token.is_object() && token.contains("content") && token["content"].is_string(),
        "{}: \"{}\" is neither a string nor an object with \"content\"", where, key);
  return token["content"].get<std::string>();
}

// A string, or a list of {"name", "template"} whose "default" entry is the template llama.cpp's
// converter writes as tokenizer.chat_template.
std::string config_chat_template(const json& config, const std::string& where) {
  if (!config.contains("chat_template") || config["chat_template"].is_null()) return {};
  const json& t = config["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  check(t.is_array(), "{}: \"chat_template\" is neither a string nor a list", where);
  for (const json& named : t) {
    if (named.is_object() && named.value("name", json()) == "default" &&
        named.contains("template") && named["template"].is_string()) {
      return named["template"].get<std::string>();
    }
  }
  return {};
}

std::optional<TokenizerConfig> read_tokenizer_config(const std::filesystem::path& config_path) {
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
  return TokenizerConfig{config_token(config, "bos_token", where),
                         config_token(config, "eos_token", where),
                         config_token(config, "pad_token", where),
                         config_chat_template(config, where)};
}

// llama.cpp's converter also makes control tokens of added tokens not marked special whose
// names look special (does_token_look_special in convert_hf_to_gguf.py).
bool looks_special(std::string_view name) {
  return name == "<pad>" || name == "<mask>" || name == "<2mass>" || name == "[@BOS@]" ||
         (name.starts_with("<|") && name.ends_with("|>")) ||
         (name.starts_with("<\uFF5C") && name.ends_with("\uFF5C>")) ||
         (name.starts_with("<unused") && name.ends_with(">"));
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
  // Views into `root`'s keys and strings, which outlive them.
  std::vector<std::string_view> texts(n);
  std::vector<bool> seen(n);
  for (const auto& [text, id_json] : vocab.items()) {
    check(id_json.is_number_integer(), "{}: id of '{}' is not an integer", model_where, text);
    const int64_t id = id_json.get<int64_t>();
    check(id >= 0 && id < static_cast<int64_t>(n) && !seen[id],
          "{}: id {} of '{}' is out of range or repeated (ids must be 0..{})", model_where, id,
          text, n - 1);
    seen[id] = true;
    texts[id] = text;
  }

  const json& merges_json = member(model, "merges", model_where);
  check(merges_json.is_array(), "{}: \"merges\" must be an array", model_where);
  std::vector<MergeText> merges;
  merges.reserve(merges_json.size());
  for (size_t i = 0; i < merges_json.size(); ++i) {
    const json& m = merges_json[i];
    if (m.is_string()) {  // "left right"
      const std::string& s = m.get_ref<const std::string&>();
      const auto merge = split_merge(s);
      check(merge.has_value(), "{}: merge {} '{}' is not two tokens separated by a space",
            model_where, i, s);
      merges.push_back(*merge);
    } else {  // ["left", "right"]
      check(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
            "{}: merge {} is neither \"a b\" nor [\"a\", \"b\"]", model_where, i);
      merges.push_back({m[0].get_ref<const std::string&>(), m[1].get_ref<const std::string&>()});
    }
  }

  TokenizerData data;
  data.bpe = byte_level_bpe(texts, index_token_texts(texts, model_where), merges,
                            model.value("ignore_merges", false), model_where);

  // Special tokens: the added tokens past the BPE vocabulary, which must follow it without gaps.
  std::vector<std::string> names;
  std::vector<TokenType> types;
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
      if (names.size() <= index) {
        names.resize(index + 1);
        types.resize(index + 1);
      }
      check(names[index].empty(), "{}: added token id {} appears twice", path, id);
      names[index] = t["content"].get<std::string>();
      check(!names[index].empty(), "{}: added token {} has empty content", path, id);
      const bool special = t.value("special", false) || looks_special(names[index]);
      types[index] = special ? TokenType::control : TokenType::user_defined;
    }
  }
  for (size_t i = 0; i < names.size(); ++i) {
    check(!names[i].empty(), "{}: no added token has id {} (special ids must follow the vocab)",
          path, n + i);
  }
  data.special_names = std::move(names);
  data.special_types = std::move(types);
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
  const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::optional<TokenizerConfig> config;
  try {
    config = read_tokenizer_config(config_path);
  } catch (const json::exception& e) {
    fail("{}: malformed tokenizer_config.json: {}", config_path.string(), e.what());
  }
  if (!config) return data;
  if (config->bos) data.bos_name = *config->bos;
  // The converter looks the eos and pad names up among the added tokens and skips a name it
  // does not find; so do we.
  auto special_id = [&](const std::optional<std::string>& name) -> std::optional<int32_t> {
    if (!name) return std::nullopt;
    for (size_t i = 0; i < data.special_names.size(); ++i) {
      if (data.special_names[i] == *name) return data.bpe.size() + static_cast<int32_t>(i);
    }
    return std::nullopt;
  };
  data.declared_eos_id = special_id(config->eos);
  data.pad_id = special_id(config->pad);
  data.chat_template = std::move(config->chat_template);
  return data;
}

}  // namespace llama3::tokenizer
