// `llama3 demo`: up to 32 users generating concurrently with paged attention, streamed output,
// per-iteration performance, a summary, a JSON report and the tokens/s/user check. The users run
// through the public engine API (demo_runner.h), as the server's clients do.
#include <fmt/core.h>

#include <cstdlib>
#include <fstream>
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
#include "dist/gather_strings.h"
#include "dist/process_mesh.h"
#include "model/model_source.h"
#include "apps/demo_runner.h"
#include "apps/stop_signals.h"
#include "llama3/engine.h"
#include "runtime/sampler.h"
#include "runtime/kv_pool_plan.h"
#include "runtime/prompt_file.h"
#include "runtime/rss.h"
#include "runtime/tsu_targets.h"

namespace llama3::apps {
namespace {

namespace fs = std::filesystem;

fs::path url_cache_dir() { return user_cache_root() / "contexts"; }

SamplingOptions sampling_options(const std::string& json_text) {
  const runtime::SamplingParams p = runtime::parse_sampling_params(json_text);
  return {p.temperature, p.top_p, p.top_k, p.seed};
}

nlohmann::json user_to_json(const DemoUser& u) {
  return {{"index", u.id},          {"prompt_index", u.prompt_index},   {"prompt", u.prompt},
          {"prompt_tokens", u.prompt_tokens}, {"text", u.text},      {"error", u.error},
          {"generated", u.result.generated}, {"stop_reason", u.result.stop_reason}, {"ttft_ms", u.result.ttft_ms},
          {"preemptions", u.result.preemptions}, {"recycles", u.result.recycles}};
}

DemoUser user_from_json(const nlohmann::json& j) {
  DemoUser u;
  u.id = j.at("index").get<size_t>();
  u.prompt_index = j.at("prompt_index").get<size_t>();
  u.prompt = j.at("prompt").get<std::string>();
  u.prompt_tokens = j.at("prompt_tokens").get<std::vector<int32_t>>();
  u.text = j.at("text").get<std::string>();
  u.error = j.at("error").get<std::string>();
  u.result.generated = j.at("generated").get<std::vector<int32_t>>();
  u.result.stop_reason = j.at("stop_reason").get<std::string>();
  u.result.ttft_ms = j.at("ttft_ms").get<double>();
  u.result.preemptions = j.at("preemptions").get<int64_t>();
  u.result.recycles = j.at("recycles").get<int64_t>();
  return u;
}

// The data-parallel groups' leaders exchange their users' results; rank 0 (group 0) puts every
// user in its place in `run` and returns true with one summary per group; the others return
// false (rank 0 prints).
bool gather_groups(DemoRun& run, size_t n_users, int group, nlohmann::json& summaries) {
  nlohmann::json mine = {{"group", group}, {"users", nlohmann::json::array()}};
  for (const DemoUser& u : run.users) mine["users"].push_back(user_to_json(u));
  const nlohmann::json summary = summary_json(run);
  mine["decode_tokens_per_s_per_user"] = summary["decode_tokens_per_s_per_user"];
  mine["decode_tokens_per_s"] = summary["decode_tokens_per_s"];
  const std::vector<std::string> all = dist::all_gather_strings(dist::group_leaders(), mine.dump());
  if (group != 0) return false;
  std::vector<DemoUser> users(n_users);
  for (const std::string& text : all) {
    const nlohmann::json g = nlohmann::json::parse(text);
    int64_t first = -1, last = -1;
    for (const nlohmann::json& u : g.at("users")) {
      const size_t index = u.at("index").get<size_t>();
      check(index < n_users, "data group {} sent user {} of {}", g.at("group").get<int>(), index, n_users);
      users[index] = user_from_json(u);
      first = first < 0 ? static_cast<int64_t>(index) : std::min<int64_t>(first, static_cast<int64_t>(index));
      last = std::max<int64_t>(last, static_cast<int64_t>(index));
    }
    summaries.push_back({{"group", g.at("group")}, {"first_user", first}, {"last_user", last},
                         {"decode_tokens_per_s_per_user", g.at("decode_tokens_per_s_per_user")},
                         {"decode_tokens_per_s", g.at("decode_tokens_per_s")}});
  }
  run.users = std::move(users);
  run.config["data_group_summaries"] = summaries;
  return true;
}

int run_demo(const DemoOptions& o) {
  o.model.apply_threads();
  const size_t rss_start = runtime::current_rss_bytes();
  // The embedded default (no checkpoint configured): 2 of the 1B preset's 16 layers, so
  // `make demo` finishes in minutes on 2 cores. --layers 16 runs the whole model.
  ModelOptions model_options = o.model;
  const auto model_dir = o.model.weights == "random" ? std::nullopt : model::resolve_model_dir(o.model.model_dir);
  if (!model_dir && !model_options.layers) model_options.layers = 2;
  if (o.fake_device) model_options.mesh = *o.fake_device;
  const model::ModelRequest request = model_options.request();
  // A mesh of D data-parallel groups (TG = 8x4): each group's leader runs the demo on its share
  // of the users, contiguous as the original splits TG's 32 users into 4 groups of 8, on its
  // group's replica of the model; rank 0 gathers everyone's results and prints them.
  const dist::MeshPlace place = dist::job_place();  // 1x1 outside an MPI job
  const int groups = place.data_groups;
  check(o.batch_size % groups == 0, "mesh {}: --batch_size {} does not split over its {} data-parallel groups",
        model_options.mesh, o.batch_size, groups);
  const int group_batch = o.batch_size / groups;

  // The KV pool is sized (or refused) before anything is loaded.
  const model::ModelPlan plan = model::plan_model(request);
  runtime::KvPoolRequest kv;
  kv.batch_size = group_batch;
  kv.max_seq_len = o.max_seq_len;
  kv.dtype = plan.precision.kv_cache;
  if (o.page_params) runtime::parse_page_params(*o.page_params, kv);
  kv.kv_memory_gib = o.kv_memory;
  kv.weight_bytes = plan.weight_bytes;
  kv.available_bytes = runtime::detect_memory_limit(o.model.memory_limit).bytes;
  const runtime::KvPoolPlan pool = runtime::plan_kv_pool(plan.kv_config, kv);
  if (o.paged_attention) {
    fmt::print("KV cache: {} blocks of {} positions, {:.3f} GiB of {} ({}); one user at --max_seq_len {} takes "
               "{:.3f} GiB\n",
               pool.num_blocks, pool.block_size, static_cast<double>(pool.bytes) / (1 << 30),
               kernels::kv_dtype_name(kv.dtype), pool.source, o.max_seq_len,
               static_cast<double>(pool.bytes_per_user) / (1 << 30));
  }
  const SamplingOptions sampling = sampling_options(o.sampling_params);
  const fs::path prompt_path = o.input_prompts ? fs::path(*o.input_prompts)
                                               : runtime::data_file("demo/prompts/questions_128.json");
  const auto specs = runtime::load_prompt_file(prompt_path);

  // The engine: paged, or contiguous as the degenerate page table (one block of max_seq_len
  // per user, no sharing).
  const size_t n_users = static_cast<size_t>(o.batch_size) * static_cast<size_t>(o.repeat_batches);
  EngineOptions eo;
  eo.model = model_options.spec(o.tokenizer);
  eo.max_batch = group_batch;
  eo.max_seq_len = o.max_seq_len;
  eo.max_queue = static_cast<int64_t>(n_users);
  eo.prefill_chunk = o.prefill_chunk;
  eo.step_tokens = o.step_tokens > 0 ? o.step_tokens : o.prefill_chunk;
  // Static batches as the original runs them: the batch's prompts first, then pure decode steps.
  eo.decode_waits_for_prefill = !o.continuous_batching;
  eo.prefix_caching = o.paged_attention && o.prefix_caching;
  eo.block_size = o.paged_attention ? pool.block_size : o.max_seq_len;
  eo.kv_blocks = o.paged_attention ? pool.num_blocks : group_batch;
  eo.position_offset = o.start_pos;
  eo.check_finite = o.stress_test;
  if (!model_options.settle_memory(eo)) return 0;
  DemoRun run;
  DemoSchedule schedule;
  schedule.batch_size = group_batch;
  schedule.continuous_batching = o.continuous_batching;
  schedule.stress_test = o.stress_test;
  schedule.max_generated_tokens = o.max_generated_tokens;
  schedule.sampling = sampling;
  schedule.print_all_users = o.print_all_users;
  schedule.total_users = static_cast<size_t>(o.batch_size) * static_cast<size_t>(o.repeat_batches);
  DemoRunner runner(schedule, run);
  // Ctrl-C or a TERM: the users in flight are cancelled, and the outputs, summary and report
  // cover the run until then; the exit code says which signal.
  const StopSignals stop_signals;
  runner.set_stop_signal(&stop_signals.received());
  eo.on_step = [&runner](const StepStats& s) { runner.on_step(s); };

  std::string model_name, optimizations;
  int64_t n_layers = 0;
  {
    Engine engine(eo);
    const ModelInfo& info = engine.model_info();
    model_name = info.name;
    n_layers = info.n_layers;
    optimizations = info.optimizations;
    fmt::print("Loaded {} ({} weights, {} layers, {} mode: {}) in {:.2f} s; weight cache: {}\n", info.name,
               info.weights, info.n_layers, info.optimizations, info.precision, info.load_seconds,
               info.weight_cache);
    if (!model_dir && !o.model.layers) {
      fmt::print("(embedded default: random weights, {} layers; run the full model with --layers {})\n",
                 info.n_layers, model::preset(info.name).n_layers);
    }

    // Prompts: rotated over batch_size * repeat_batches users, encoded by the engine (chat
    // format with --instruct).
    std::vector<runtime::ResolvedPrompt> resolved;
    for (size_t i = 0; i < specs.size(); ++i) {
      resolved.push_back(runtime::resolve_prompt(specs[i], prompt_path.parent_path(), url_cache_dir()));
      if (!resolved.back().warning.empty() && place.data_group == 0) {
        fmt::print(stderr, "prompt {}: {}\n", i, resolved.back().warning);
      }
    }
    for (size_t u = 0; u < n_users; ++u) {
      if (static_cast<int>((u % static_cast<size_t>(o.batch_size)) / static_cast<size_t>(group_batch)) !=
          place.data_group) {
        continue;  // another data-parallel group's user
      }
      DemoUser user;
      user.id = u;
      user.prompt_index = u % specs.size();
      const auto& r = resolved[user.prompt_index];
      user.prompt = r.text;
      user.error = r.error;
      if (user.error.empty()) {
        GenerationRequest req;
        if (!r.image.empty()) req.images = {r.image};  // the image opens the prompt (or the user's message)
        if (o.instruct) {
          req.messages = {{"user", r.text, static_cast<int>(req.images.size())}};
        } else {
          req.prompt_text = r.text;
        }
        try {
          user.prompt_tokens = engine.encode_prompt(req);
          engine.check_images(req);
          user.images = std::move(req.images);
        } catch (const EngineError& e) {  // a bad image (or prompt) stops this user, not the others
          user.error = e.what();
        }
        if (user.error.empty() && static_cast<int64_t>(user.prompt_tokens.size()) >= o.max_seq_len) {
          user.error = fmt::format("prompt of {} tokens does not fit --max_seq_len {}", user.prompt_tokens.size(),
                                   o.max_seq_len);
        }
      }
      if (!user.error.empty() && place.data_group == 0) fmt::print(stderr, "user {}: {}\n", u, user.error);
      run.users.push_back(std::move(user));
    }

    const std::string mode = o.continuous_batching ? "continuous batching" : "static batches";
    run.config = {{"model", info.name},           {"weights", info.weights},      {"layers", info.n_layers},
                  {"batch_size", o.batch_size}, {"threads", thread_count()},    {"mode", mode},
                  {"paged_attention", o.paged_attention}, {"max_seq_len", o.max_seq_len},
                  {"max_generated_tokens", o.max_generated_tokens}, {"optimizations", info.optimizations},
                  {"device", model_options.mesh}, {"instruct", o.instruct}, {"users", n_users},
                  {"sampling", nlohmann::json::parse(o.sampling_params)}, {"kv_cache", info.kv_cache},
                  {"kv_pool", o.paged_attention ? pool.source : "contiguous: batch x max_seq_len"},
                  {"prefix_caching", eo.prefix_caching}, {"step_tokens", eo.step_tokens},
                  {"data_groups", groups}};
    run.load_seconds = info.load_seconds;
    run.weight_cache = info.weight_cache;
    run.stress_test = o.stress_test;
    run.stats.total_blocks = info.kv_blocks;
    run.stats.kv_bytes = info.kv_cache_bytes;

    fmt::print("Running {} users ({} x {}), {}, {} KV cache, sampling {}\n", n_users, o.repeat_batches,
               o.batch_size, mode, o.paged_attention ? "paged" : "contiguous", o.sampling_params);
    runner.run(engine);
    for (DemoUser& user : run.users) user.text = engine.decode(user.result.generated);
  }  // the engine's thread has ended: everything its callbacks wrote is ours to read
  runner.finish();

  run.rss_end = runner.rss_at_end();
  // Flat memory is judged from the first decode iteration on (model and KV pool are in place).
  const size_t rss_first_iteration = runner.rss_after_first_iteration();
  run.rss_start = rss_first_iteration ? rss_first_iteration : rss_start;
  run.peak_rss = runtime::peak_rss_bytes();
  nlohmann::json group_summaries = nlohmann::json::array();
  if (groups > 1) {
    if (!gather_groups(run, n_users, place.data_group, group_summaries)) return 0;  // rank 0 prints
  }

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
  for (const nlohmann::json& g : group_summaries) {
    fmt::print("data group {}: users {}..{}, decode {:.2f} tok/s/user, {:.1f} tok/s aggregate\n", g["group"].get<int>(),
               g["first_user"].get<int64_t>(), g["last_user"].get<int64_t>(),
               g["decode_tokens_per_s_per_user"].get<double>(), g["decode_tokens_per_s"].get<double>());
  }
  if (o.report) {
    std::ofstream out(*o.report);
    check(static_cast<bool>(out), "cannot write --report {}", *o.report);
    out << report_json(run).dump(2) << "\n";
  }
  if (const int signal = stop_signals.received().load(); signal != 0) {
    fmt::print(stderr, "llama3 demo: stopped by {}\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
    return StopSignals::exit_code(signal);
  }
  if (o.tsu_check) {
    const fs::path table_path = o.tsu_targets ? fs::path(*o.tsu_targets) : runtime::data_file("demo/tsu_targets.json");
    const auto table = runtime::load_tsu_targets(table_path);
    const auto target = runtime::find_tsu_target(table, model_name, static_cast<int>(n_layers), o.batch_size, optimizations);
    check(target.has_value(), "--tsu_check: no target for model {} layers {} batch {} optimizations {} in {}",
          model_name, n_layers, o.batch_size, optimizations, table_path.string());
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
