// `llama3 demo`: up to 32 users generating concurrently with paged attention, streamed output,
// per-iteration performance, a summary, a JSON report and the tokens/s/user check.
#include <fmt/core.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/command.h"
#include "apps/demo_options.h"
#include "apps/demo_report.h"
#include "runtime/data_files.h"
#include "runtime/tokenizer_location.h"
#include "core/error.h"
#include "core/user_cache.h"
#include "core/parallel.h"
#include "model/model_source.h"
#include "runtime/batch_generator.h"
#include "runtime/kv_pool_plan.h"
#include "runtime/prompt_file.h"
#include "runtime/rss.h"
#include "runtime/tsu_targets.h"
#include "tokenizer/tokenizer.h"

namespace llama3::apps {
namespace {

namespace fs = std::filesystem;

void parse_page_params(const std::string& text, runtime::KvPoolRequest& g) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("--page_params is not valid JSON: {}", e.what());
  }
  check(j.is_object(), "--page_params must be a JSON object like {{\"page_block_size\":32,\"page_max_num_blocks\":1024}}");
  for (const auto& [key, value] : j.items()) {
    check(key == "page_block_size" || key == "page_max_num_blocks",
          "--page_params: unknown key \"{}\" (accepted: page_block_size, page_max_num_blocks)", key);
    check(value.is_number_integer() && value.get<int64_t>() > 0, "--page_params: {} must be a positive integer", key);
    (key == "page_block_size" ? g.block_size : g.num_blocks) = value.get<int64_t>();
  }
  check(g.block_size.value_or(0) <= 4096 && g.num_blocks.value_or(0) <= (int64_t{1} << 22),
        "--page_params: values too large");
}

fs::path url_cache_dir() { return user_cache_root() / "contexts"; }

std::string quoted_piece(const std::string& text) {
  std::string out;
  for (char ch : text) out += ch == '\n' ? std::string("\\n") : std::string(1, ch);
  return out;
}

int run_demo(const DemoOptions& o) {
  o.model.apply_threads();
  const size_t rss_start = runtime::current_rss_bytes();
  // The embedded default (no checkpoint configured): 2 of the 1B preset's 16 layers, so
  // `make demo` finishes in minutes on 2 cores. --layers 16 runs the whole model.
  ModelOptions model_options = o.model;
  const auto model_dir = o.model.weights == "random" ? std::nullopt : model::resolve_model_dir(o.model.model_dir);
  if (!model_dir && !model_options.layers) model_options.layers = 2;
  model_options.mesh = o.fake_device;
  const model::ModelRequest request = model_options.request();

  // The KV pool is sized (or refused) before anything is loaded.
  const model::ModelPlan plan = model::plan_model(request);
  runtime::KvPoolRequest kv;
  kv.batch_size = o.batch_size;
  kv.max_seq_len = o.max_seq_len;
  kv.dtype = plan.precision.kv_cache;
  if (o.page_params) parse_page_params(*o.page_params, kv);
  kv.kv_memory_gib = o.kv_memory;
  kv.weight_bytes = plan.weight_bytes;
  kv.available_bytes = runtime::available_memory_bytes();
  const runtime::KvPoolPlan pool = runtime::plan_kv_pool(plan.config, kv);
  if (o.paged_attention) {
    fmt::print("KV cache: {} blocks of {} positions, {:.3f} GiB of {} ({}); one user at --max_seq_len {} takes "
               "{:.3f} GiB\n",
               pool.num_blocks, pool.block_size, static_cast<double>(pool.bytes) / (1 << 30),
               kernels::kv_dtype_name(kv.dtype), pool.source, o.max_seq_len,
               static_cast<double>(pool.bytes_per_user) / (1 << 30));
  }

  model::OpenedModel opened = model::open_model(request);
  model::LlamaModel& m = *opened.model;
  const model::ModelConfig& c = m.config();
  fmt::print("Loaded {} ({} weights, {} layers, {} mode: {}) in {:.2f} s; weight cache: {}\n", c.name, opened.weights,
             c.n_layers, opened.precision.mode, opened.precision.to_json(), opened.load_seconds, opened.cache);
  if (!model_dir && !o.model.layers) {
    fmt::print("(embedded default: random weights, {} layers; run the full model with --layers {})\n", c.n_layers,
               model::preset(c.name).n_layers);
  }

  const auto tokenizer = runtime::load_tokenizer(
      o.tokenizer ? std::optional<fs::path>(*o.tokenizer) : std::nullopt, model_dir);

  // Prompts: rotated over batch_size * repeat_batches users.
  const fs::path prompt_path = o.input_prompts ? fs::path(*o.input_prompts)
                                               : runtime::data_file("demo/prompts/questions_128.json");
  const auto specs = runtime::load_prompt_file(prompt_path);
  std::vector<runtime::ResolvedPrompt> resolved;
  for (size_t i = 0; i < specs.size(); ++i) {
    resolved.push_back(runtime::resolve_prompt(specs[i], prompt_path.parent_path(), url_cache_dir()));
    if (!resolved.back().warning.empty()) fmt::print(stderr, "prompt {}: {}\n", i, resolved.back().warning);
  }

  DemoRun run;
  const size_t n_users = static_cast<size_t>(o.batch_size) * static_cast<size_t>(o.repeat_batches);
  std::vector<runtime::Request> requests;
  std::vector<size_t> request_user;  // request -> index in run.users
  for (size_t u = 0; u < n_users; ++u) {
    DemoUser user;
    user.prompt_index = u % specs.size();
    const auto& r = resolved[user.prompt_index];
    user.prompt = r.text;
    user.error = r.error;
    if (user.error.empty()) {
      if (o.instruct) {
        const tokenizer::ChatMessage dialog[] = {{"user", r.text}};
        user.prompt_tokens = tokenizer::encode_dialog(tokenizer, dialog);
      } else {
        user.prompt_tokens = tokenizer.encode(r.text, true, false);
      }
      if (static_cast<int64_t>(user.prompt_tokens.size()) >= o.max_seq_len) {
        user.error = fmt::format("prompt of {} tokens does not fit --max_seq_len {}", user.prompt_tokens.size(),
                                 o.max_seq_len);
      }
    }
    if (user.error.empty()) {
      requests.push_back({user.prompt_tokens, u});
      request_user.push_back(u);
    } else {
      fmt::print(stderr, "user {}: {}\n", u, user.error);
    }
    run.users.push_back(std::move(user));
  }

  check(!requests.empty(), "no user can run: every prompt failed (see the errors above)");
  runtime::GenerationOptions g;
  g.batch_size = o.batch_size;
  g.max_seq_len = o.max_seq_len;
  g.max_generated_tokens = o.max_generated_tokens;
  g.paged = o.paged_attention;
  g.block_size = pool.block_size;
  g.num_blocks = pool.num_blocks;
  g.sampling = runtime::parse_sampling_params(o.sampling_params);
  g.continuous_batching = o.continuous_batching;
  g.stress_test = o.stress_test;
  g.prefill_chunk = o.prefill_chunk;
  g.start_pos = o.start_pos;
  g.kv_dtype = opened.precision.kv_cache;
  const std::string mode = o.continuous_batching ? "continuous batching" : "static batches";
  run.config = {{"model", c.name},           {"weights", opened.weights},     {"layers", c.n_layers},
                {"batch_size", o.batch_size}, {"threads", thread_count()},     {"mode", mode},
                {"paged_attention", o.paged_attention}, {"max_seq_len", o.max_seq_len},
                {"max_generated_tokens", o.max_generated_tokens}, {"optimizations", opened.precision.mode},
                {"device", o.fake_device}, {"instruct", o.instruct}, {"users", n_users},
                {"sampling", nlohmann::json::parse(o.sampling_params)},
                {"kv_cache", kernels::kv_dtype_name(g.kv_dtype)},
                {"kv_pool", o.paged_attention ? pool.source : "contiguous: batch x max_seq_len"}};
  run.load_seconds = opened.load_seconds;
  run.weight_cache = opened.cache;
  run.stress_test = o.stress_test;
  fmt::print("Running {} users ({} x {}), {}, {} KV cache, sampling {}\n", n_users, o.repeat_batches, o.batch_size,
             mode, o.paged_attention ? "paged" : "contiguous", o.sampling_params);

  runtime::BatchGenerator generator(m, g, [&](int32_t id) { return tokenizer.is_stop(id); });
  std::vector<tokenizer::StreamDecoder> streams(requests.size(), tokenizer::StreamDecoder(tokenizer));
  std::map<size_t, std::string> pending;  // text produced since the last iteration line, per request
  const auto on_token = [&](size_t request, int32_t token) {
    if (request == 0 || o.print_all_users) pending[request] += streams[request].push(token);
  };
  size_t rss_first_iteration = 0;
  const auto on_iteration = [&](const runtime::IterationStat& it) {
    run.iterations.push_back(it);
    if (it.iteration == 0) rss_first_iteration = runtime::current_rss_bytes();
    fmt::print("Iteration {}: {:.0f}ms @ {:.1f} tok/s/user ({:.1f} tok/s throughput)", it.iteration, it.ms,
               1000.0 / it.ms, 1000.0 * it.active_users / it.ms);
    for (auto& [request, text] : pending) {
      if (!text.empty()) fmt::print("  user {}: \"{}\"", request_user[request], quoted_piece(text));
      text.clear();
    }
    fmt::print("\n");
  };
  const auto results = generator.run(requests, on_token, on_iteration);
  run.stats = generator.stats();
  for (size_t r = 0; r < results.size(); ++r) {
    DemoUser& user = run.users[request_user[r]];
    user.result = results[r];
    user.text = tokenizer.decode(results[r].generated);
  }
  run.rss_end = runtime::current_rss_bytes();
  // Flat memory is judged from the first decode iteration on (model and KV pool are in place).
  run.rss_start = rss_first_iteration ? rss_first_iteration : rss_start;
  run.peak_rss = runtime::peak_rss_bytes();

  if (!o.stress_test) {
    fmt::print("\n=== Outputs ===\n");
    for (size_t u = 0; u < run.users.size(); ++u) {
      const DemoUser& user = run.users[u];
      fmt::print("--- user {} (prompt {}, {} prompt tokens, {} generated, first token after {:.0f} ms, {}) ---\n", u,
                 user.prompt_index, user.prompt_tokens.size(), user.result.generated.size(), user.result.ttft_ms,
                 user.error.empty() ? user.result.stop_reason : "error: " + user.error);
      fmt::print("Q: {}\nA: {}\n", user.prompt.size() > 300 ? user.prompt.substr(0, 300) + "..." : user.prompt,
                 user.text);
    }
  }
  print_summary(run);
  if (o.report) {
    std::ofstream out(*o.report);
    check(static_cast<bool>(out), "cannot write --report {}", *o.report);
    out << report_json(run).dump(2) << "\n";
  }
  if (o.tsu_check) {
    const fs::path table_path = o.tsu_targets ? fs::path(*o.tsu_targets) : runtime::data_file("demo/tsu_targets.json");
    const auto table = runtime::load_tsu_targets(table_path);
    const auto target = runtime::find_tsu_target(table, c.name, static_cast<int>(c.n_layers), o.batch_size, opened.precision.mode);
    check(target.has_value(), "--tsu_check: no target for model {} layers {} batch {} optimizations {} in {}", c.name,
          c.n_layers, o.batch_size, opened.precision.mode, table_path.string());
    const auto tsu = per_iteration_tsu(run.iterations);
    const auto result = runtime::check_tsu(*target, tsu);
    fmt::print("TSU check: {} of {} iterations outside [{:.2f}, {:.2f}] tok/s/user: {}\n", result.outside, result.total,
               target->min_tsu, target->max_tsu, result.passed ? "PASS" : "FAIL");
    if (!result.passed) return 3;
  }
  return 0;
}

const CommandRegistrar kRegistrar{"demo", "the Llama 3 demo: batched users, paged attention, performance report",
                                  [](CLI::App& app) {
                                    auto o = std::make_shared<DemoOptions>();
                                    o->add_to(app);
                                    return [o] { return run_demo(*o); };
                                  }};

}  // namespace
}  // namespace llama3::apps
