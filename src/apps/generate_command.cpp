// `llama3 generate`: greedy continuation of a prompt given as token ids (or text), printed as
// one JSON object; optionally the logits at the last (or every) prompt position.
#include <fmt/core.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/cli_options.h"
#include "apps/command.h"
#include "runtime/tokenizer_location.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/timer.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"
#include "model/model_factory.h"
#include "model/model_source.h"
#include "runtime/logit_stats.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"
#include "vision/image_decode.h"
#include "vision/image_preprocess.h"

namespace llama3::apps {
namespace {

struct GenerateOptions {
  ModelOptions model;
  std::string tokens;
  std::optional<std::string> prompt;
  std::vector<std::string> images;  // vision models: PNG/JPEG files, one per image token
  bool chat = false;
  std::optional<std::string> tokenizer;
  int64_t max_generated_tokens = 16;
  std::string logits_out;
  bool logits_all = false;
  int logits_top = 0;  // > 0: write only the top-k (id, logit) pairs of each row
  int64_t prefill_chunk = 256;  // as the demo and the server: the same chunks, the same bits
};

constexpr int32_t kStopIds[] = {128001, 128008, 128009};

// The prompt's token ids: --tokens as given, or --prompt TEXT encoded (with one BOS, or in the
// chat format with --chat). With --image, a prompt text holds "<|image|>" where each goes (or
// none: they follow the BOS, or open the user's message in the chat format), token ids the image
// token (the model's vocab_size, 128256 for the 11B).
std::vector<int32_t> prompt_tokens(const GenerateOptions& o, std::optional<tokenizer::Tokenizer>& tok) {
  check(o.tokens.empty() != !o.prompt.has_value(), "give the prompt with either --tokens \"128000,2028,374\" or --prompt TEXT");
  if (!o.prompt) return parse_token_list(o.tokens);
  const auto dir = o.model.weights == "random" ? std::nullopt : model::resolve_model_dir(o.model.model_dir);
  tok.emplace(runtime::load_tokenizer(o.tokenizer ? std::optional<std::filesystem::path>(*o.tokenizer) : std::nullopt, dir));
  // The image token is the vocabulary's size (128256 for the 11B), from the model's config.
  const int32_t image_token =
      o.images.empty() ? -1 : static_cast<int32_t>(model::plan_model(o.model.request()).config.image_token_id());
  if (!o.chat) {
    if (o.images.empty()) return tok->encode(*o.prompt, true, false);
    return tokenizer::encode_prompt_with_images(*tok, *o.prompt, image_token, o.images.size());
  }
  const tokenizer::ChatMessage dialog[] = {{"user", *o.prompt, static_cast<int>(o.images.size())}};
  return tokenizer::encode_dialog(*tok, dialog, true, image_token);
}

int run_generate(const GenerateOptions& o) {
  o.model.apply_threads();
  if (!o.images.empty()) {  // before loading anything
    const model::ModelConfig planned = model::plan_model(o.model.request()).config;
    check(planned.has_vision(), "{} is a text-only model: --image needs a vision model (Llama-3.2-11B-Vision)",
          planned.name);
  }
  std::optional<tokenizer::Tokenizer> tok;
  const std::vector<int32_t> prompt = prompt_tokens(o, tok);
  check(!prompt.empty(), "the prompt is empty");
  constexpr int64_t kBlock = 32;
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  const bool go_on = o.model.settle_memory([&](const model::ModelPlan& plan) {
    runtime::RunShape shape;
    shape.step_tokens = std::min(n_prompt, o.prefill_chunk);
    shape.logit_rows = o.logits_all ? shape.step_tokens : 1;
    const int64_t blocks = (n_prompt + o.max_generated_tokens + kBlock - 1) / kBlock;
    shape.kv_bytes = model::KvCache::bytes_for(plan.kv_config, blocks, kBlock, plan.precision.kv_cache);
    if (o.logits_all) {
      shape.kept_bytes = static_cast<size_t>(n_prompt * plan.config.vocab_size) * sizeof(float);
      shape.kept_what = "logits of every prompt position (--logits_all)";
    }
    return shape;
  });
  if (!go_on) return 0;
  model::OpenedModel opened = model::open_model(o.model.request());
  model::LlamaModel& m = *opened.model;
  const model::ModelConfig& c = m.config();
  for (int32_t id : prompt) {
    check(id < c.vocab_size || (c.has_vision() && id == c.image_token_id()),
          "token id {} is outside the vocabulary (0..{})", id, c.vocab_size - 1);
  }
  // Images (a vision model: checked before loading): decoded and preprocessed here, encoded
  // once; every pass of the request sees them.
  std::vector<vision::ImageTiles> tiles;
  for (const std::string& path : o.images) {
    tiles.push_back(vision::preprocess_image(vision::load_image(path), c.vision.tile_size, c.vision.max_tiles));
  }
  const model::CrossAttentionContext images = m.image_context(tiles, prompt);
  const model::CrossAttentionContext* images_ptr = tiles.empty() ? nullptr : &images;
  const int64_t total = static_cast<int64_t>(prompt.size()) + o.max_generated_tokens;
  check(total <= c.max_seq_len, "prompt ({}) + max_generated_tokens ({}) exceeds the context of {} tokens",
        prompt.size(), o.max_generated_tokens, c.max_seq_len);

  model::KvCache cache(m.kv_config(), (total + kBlock - 1) / kBlock, kBlock,
                       opened.precision.kv_cache);
  std::vector<int32_t> table(static_cast<size_t>(cache.num_blocks()));
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(i);

  // Prefill in chunks (bounded activation memory for long prompts).
  std::vector<float> logits, all_logits;
  const Timer prefill_timer;
  Progress progress("prefill", static_cast<double>(prompt.size()), "tokens");
  for (size_t begin = 0; begin < prompt.size(); begin += static_cast<size_t>(o.prefill_chunk)) {
    const size_t end = std::min(prompt.size(), begin + static_cast<size_t>(o.prefill_chunk));
    const model::BatchItem item{std::span(prompt).subspan(begin, end - begin), static_cast<int64_t>(begin), table,
                                o.logits_all, 0, images_ptr};
    m.forward({&item, 1}, cache, logits);
    if (o.logits_all) all_logits.insert(all_logits.end(), logits.begin(), logits.end());
    progress.advance(static_cast<double>(end - begin));
  }
  progress.finish();
  const double prefill_s = prefill_timer.seconds();
  const std::vector<float> last(logits.end() - c.vocab_size, logits.end());

  auto argmax = [&](const std::vector<float>& row) {
    return static_cast<int32_t>(std::max_element(row.end() - c.vocab_size, row.end()) - (row.end() - c.vocab_size));
  };
  std::vector<int32_t> generated;
  std::string stop_reason = "max_generated_tokens";
  const Timer decode_timer;
  int32_t next = argmax(logits);
  for (int64_t i = 0; i < o.max_generated_tokens; ++i) {
    generated.push_back(next);
    if (std::find(std::begin(kStopIds), std::end(kStopIds), next) != std::end(kStopIds)) {
      stop_reason = "stop_token";
      break;
    }
    if (i + 1 == o.max_generated_tokens) break;
    const model::BatchItem item{std::span(&generated.back(), 1),
                                static_cast<int64_t>(prompt.size() + generated.size()) - 1, table, false, 0,
                                images_ptr};
    m.forward({&item, 1}, cache, logits);
    next = argmax(logits);
  }
  const double decode_s = decode_timer.seconds();

  if (!o.logits_out.empty()) {
    std::ofstream out(o.logits_out);
    check(static_cast<bool>(out), "cannot write {}", o.logits_out);
    // One row as the full vocabulary, or as its top-k {"ids": [...], "logits": [...]}.
    auto row_json = [&](std::span<const float> row) -> nlohmann::json {
      if (o.logits_top <= 0) return std::vector<float>(row.begin(), row.end());
      const std::vector<int32_t> ids = runtime::top_k_ids(row, o.logits_top);
      std::vector<float> values;
      for (int32_t id : ids) values.push_back(row[static_cast<size_t>(id)]);
      return {{"ids", ids}, {"logits", values}};
    };
    nlohmann::json j;
    if (o.logits_all) {
      j = nlohmann::json::array();
      for (size_t r = 0; r < prompt.size(); ++r) {
        j.push_back(row_json(std::span<const float>(all_logits).subspan(r * static_cast<size_t>(c.vocab_size),
                                                                        static_cast<size_t>(c.vocab_size))));
      }
    } else {
      j = row_json(last);
    }
    out << j.dump() << "\n";
  }
  nlohmann::json result = {{"prompt", prompt}, {"generated", generated}, {"stop_reason", stop_reason}};
  if (tok) result["text"] = tok->decode(generated);
  fmt::print("{}\n", result.dump());
  fmt::print(stderr, "model {} ({}, {} layers), load {:.2f} s, prefill {} tokens {:.3f} s, decode {} tokens {:.3f} s{}\n",
             c.name, opened.format, c.n_layers, opened.load_seconds, prompt.size(), prefill_s, generated.size(),
             decode_s,
             tiles.empty() ? std::string()
                           : fmt::format(", image encoder {} image(s) {:.3f} s", tiles.size(), m.encoder_seconds()));
  return 0;
}

const CommandRegistrar kRegistrar{
    "generate", "greedy continuation of a prompt (token ids or text), printed as JSON", [](CLI::App& app) {
      auto o = std::make_shared<GenerateOptions>();
      o->model.add_to(app);
      app.add_option("--tokens", o->tokens, "prompt token ids, e.g. \"128000,2028,374\"");
      app.add_option("--prompt", o->prompt, "prompt text (encoded with one BOS; see --chat)");
      app.add_flag("--chat", o->chat, "with --prompt: wrap it in the Llama 3 chat format");
      app.add_option("--image", o->images,
                     "vision models: a PNG or JPEG file, one per image (repeat the flag); the prompt marks each with "
                     "<|image|> (text) or the image token 128256 (--tokens), or they open the prompt")
          ->check(CLI::ExistingFile);
      app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or tokenizer.model (default: with the weights, else built-in)");
      app.add_option("--max_generated_tokens", o->max_generated_tokens, "tokens to generate")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--logits_out", o->logits_out, "write the logits at the last prompt position (JSON array)");
      app.add_option("--logits_top", o->logits_top,
                     "with --logits_out: only each row's K largest logits, as {\"ids\": [...], \"logits\": [...]}")
          ->check(CLI::NonNegativeNumber);
      app.add_option("--logits_all", o->logits_all, "with --logits_out: logits at every prompt position")
          ->capture_default_str();
      app.add_option("--prefill_chunk", o->prefill_chunk, "prompt tokens per forward pass")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      return [o] { return run_generate(*o); };
    }};

}  // namespace
}  // namespace llama3::apps
