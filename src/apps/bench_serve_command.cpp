// `llama3 bench-serve`: load an OpenAI-compatible server with streamed completions and report
// what `vllm bench serve` reports (throughput, TTFT, TPOT, ITL), the server's prefix-cache hit
// rate and preemptions over the run, and whether it went back to idle. Every answer that was not
// abandoned on purpose is validated; a failed or malformed one is listed and makes the exit
// code 3, so the command doubles as a load test. It stops by itself after --timeout_s.
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "apps/command.h"
#include "core/error.h"
#include "server/load_client.h"
#include "server/load_summary.h"

namespace llama3::apps {
namespace {

using nlohmann::json;
using server::LoadSummary;
using server::ServerCounters;

constexpr int kExitFailures = 3;   // the run found failures (1 is an error that stopped it)
constexpr size_t kListedFailures = 50;  // the rest are in --json

struct BenchServeOptions {
  std::string url = "http://127.0.0.1:8080";
  std::optional<std::string> host;
  std::optional<int> port;
  std::string api_key;
  std::optional<std::string> model;
  std::string request_rate = "inf";
  std::string prompt_tokens = "64,256";
  server::LoadOptions load;
  double idle_wait_s = 10.0;
  std::optional<std::string> json_path;
};

double parse_rate(const std::string& text) {
  if (text == "inf") return std::numeric_limits<double>::infinity();
  size_t used = 0;
  double rate = 0.0;
  try {
    rate = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used == text.size() && rate > 0 && std::isfinite(rate),
        "--request_rate must be a positive number of requests per second or inf, got '{}'", text);
  return rate;
}

std::pair<int64_t, int64_t> parse_range(const std::string& text) {
  const size_t comma = text.find(',');
  auto number = [&](const std::string& part) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(!part.empty() && used == part.size(), "--prompt_tokens must be N or MIN,MAX, got '{}'", text);
    return v;
  };
  if (comma == std::string::npos) {
    const int64_t n = number(text);
    return {n, n};
  }
  return {number(text.substr(0, comma)), number(text.substr(comma + 1))};
}

// Polls /metrics until the server holds nothing (abandoned requests free their blocks once the
// server notices the closed connection) or `limit` passes; the last reading.
std::optional<ServerCounters> wait_for_idle(const server::LoadTarget& target, double limit_s) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  std::optional<ServerCounters> c = server::read_server_counters(target);
  while (c && !c->idle() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c = server::read_server_counters(target);
  }
  return c;
}

void print_latency(const char* title, const char* name, const server::LatencySummary& s) {
  fmt::print("{:-^50}\n", title);
  fmt::print("{:<40}{:<10.2f}\n", fmt::format("Mean {} (ms):", name), s.mean);
  fmt::print("{:<40}{:<10.2f}\n", fmt::format("Median {} (ms):", name), s.p50);
  fmt::print("{:<40}{:<10.2f}\n", fmt::format("P90 {} (ms):", name), s.p90);
  fmt::print("{:<40}{:<10.2f}\n", fmt::format("P99 {} (ms):", name), s.p99);
}

void print_report(const LoadSummary& s, const std::optional<ServerCounters>& before,
                  const std::optional<ServerCounters>& after, bool deadline_hit) {
  fmt::print("{:=^50}\n", " Serving Benchmark Result ");
  fmt::print("{:<40}{:<10}\n", "Successful requests:", s.completed);
  fmt::print("{:<40}{:<10}\n", "Failed requests:", s.failed);
  fmt::print("{:<40}{:<10}\n", "Cancelled requests (closed mid-stream):", s.cancelled);
  if (s.not_sent > 0 || deadline_hit) fmt::print("{:<40}{:<10}\n", "Not sent (deadline):", s.not_sent);
  fmt::print("{:<40}{:<10.2f}\n", "Benchmark duration (s):", s.duration_s);
  fmt::print("{:<40}{:<10}\n", "Total input tokens:", s.input_tokens);
  fmt::print("{:<40}{:<10}\n", "Total generated tokens:", s.output_tokens);
  fmt::print("{:<40}{:<10.2f}\n", "Request throughput (req/s):", s.request_throughput);
  fmt::print("{:<40}{:<10.2f}\n", "Output token throughput (tok/s):", s.output_throughput);
  fmt::print("{:<40}{:<10.2f}\n", "Total token throughput (tok/s):", s.total_token_throughput);
  print_latency("Time to First Token", "TTFT", s.ttft_ms);
  print_latency("Time per Output Token (excl. 1st token)", "TPOT", s.tpot_ms);
  print_latency("Inter-token Latency", "ITL", s.itl_ms);
  print_latency("End-to-end Latency", "E2EL", s.e2el_ms);
  fmt::print("{:-^50}\n", "Server (GET /metrics)");
  if (!before || !after) {
    fmt::print("not llama3's metrics: no prefix-cache, preemption or idle figures\n");
  } else {
    const double prompt = after->prompt_tokens - before->prompt_tokens;
    const double cached = after->prompt_tokens_cached - before->prompt_tokens_cached;
    fmt::print("{:<40}{:<10.3f}\n", "Prefix cache hit rate:", prompt > 0 ? cached / prompt : 0.0);
    fmt::print("{:<40}{:<10.0f}\n", "Preemptions:", after->preemptions - before->preemptions);
    const double checked = after->logits_checked - before->logits_checked;
    if (checked > 0) {
      fmt::print("{:<40}{:.0f} of {:.0f} rows held NaN/Inf\n", "Logit checks (--check_finite):",
                 after->logits_nonfinite - before->logits_nonfinite, checked);
    }
    fmt::print("{:<40}{} ({} running, {} waiting, {} of {} KV blocks used)\n", "Idle at the end:",
               after->idle() ? "yes" : "NO", after->requests_running, after->requests_waiting, after->kv_blocks_used,
               after->kv_blocks_total);
  }
  fmt::print("{:=^50}\n", "");
}

json counters_json(const std::optional<ServerCounters>& c) {
  if (!c) return nullptr;
  return {{"prompt_tokens", c->prompt_tokens},       {"prompt_tokens_cached", c->prompt_tokens_cached},
          {"generation_tokens", c->generation_tokens}, {"preemptions", c->preemptions},
          {"requests_running", c->requests_running}, {"requests_waiting", c->requests_waiting},
          {"kv_blocks_used", c->kv_blocks_used},     {"kv_blocks_total", c->kv_blocks_total},
          {"logits_checked", c->logits_checked},     {"logits_nonfinite", c->logits_nonfinite},
          {"resident_bytes", c->resident_bytes},     {"heap_in_use", c->heap_in_use},
          {"heap_free_held", c->heap_free_held}};
}

json options_json(const BenchServeOptions& o, const server::LoadTarget& target) {
  const server::LoadOptions& l = o.load;
  return {{"url", target.base_url},         {"model", target.model},
          {"requests", l.requests},         {"concurrency", l.concurrency},
          {"request_rate", o.request_rate}, {"prompt_tokens", {l.prompt_min, l.prompt_max}},
          {"shared_prefix", l.shared_prefix}, {"max_tokens", l.max_tokens},
          {"cancel_fraction", l.cancel_fraction}, {"seed", l.seed},
          {"timeout_s", l.timeout_s},       {"ignore_eos", l.ignore_eos}};
}

int run_bench_serve(BenchServeOptions o) {
  server::LoadTarget target;
  const std::string url =
      o.host || o.port ? fmt::format("http://{}:{}", o.host.value_or("127.0.0.1"), o.port.value_or(8080)) : o.url;
  target.base_url = server::normalize_base_url(url);
  target.api_key = o.api_key;
  target.model = o.model ? *o.model : server::first_model_id(target);  // also: is the server there?
  std::tie(o.load.prompt_min, o.load.prompt_max) = parse_range(o.prompt_tokens);
  o.load.request_rate = parse_rate(o.request_rate);
  const std::vector<server::PlannedRequest> plan = server::plan_requests(o.load);

  fmt::print("bench-serve: {} requests to {} (model {}), {} in flight at most, rate {}/s, prompts of {} shared + {}-{} "
             "tokens, max_tokens {}, {:.0f}% closed mid-stream, deadline {} s\n",
             o.load.requests, target.base_url, target.model, o.load.concurrency, o.request_rate, o.load.shared_prefix,
             o.load.prompt_min, o.load.prompt_max, o.load.max_tokens, o.load.cancel_fraction * 100,
             o.load.timeout_s);
  std::fflush(stdout);
  const std::optional<ServerCounters> before = server::read_server_counters(target);
  const server::LoadRun run = server::run_load(target, o.load, plan);
  const std::optional<ServerCounters> after = before ? wait_for_idle(target, o.idle_wait_s) : std::nullopt;
  const LoadSummary summary = server::summarize_run(run);
  print_report(summary, before, after, run.deadline_hit);

  json failures = json::array();
  for (size_t i = 0; i < run.records.size(); ++i) {
    const server::RequestRecord& r = run.records[i];
    if (r.outcome == server::Outcome::failed || r.outcome == server::Outcome::not_sent) {
      failures.push_back({{"index", i}, {"outcome", server::outcome_name(r.outcome)}, {"error", r.error}});
    }
  }
  const bool not_idle = after && !after->idle();
  for (size_t i = 0; i < failures.size() && i < kListedFailures; ++i) {
    fmt::print("request {} {}: {}\n", failures[i]["index"].get<size_t>(), failures[i]["outcome"].get<std::string>(),
               failures[i]["error"].get<std::string>());
  }
  if (failures.size() > kListedFailures) fmt::print("... and {} more\n", failures.size() - kListedFailures);
  if (not_idle) fmt::print("the server was not idle {} s after the run\n", o.idle_wait_s);
  const int exit_code = failures.empty() && !not_idle ? 0 : kExitFailures;

  if (o.json_path) {
    json requests = json::array();
    for (const server::RequestRecord& r : run.records) {
      requests.push_back({{"outcome", server::outcome_name(r.outcome)},
                          {"prompt_tokens", r.prompt_tokens},
                          {"cached_tokens", r.cached_tokens},
                          {"output_tokens", r.output_tokens},
                          {"ttft_s", r.ttft_s ? json(*r.ttft_s) : json(nullptr)},
                          {"e2el_s", r.end_s - r.sent_s},
                          {"finish_reason", r.finish_reason}});
    }
    json server_json = {{"before", counters_json(before)}, {"after", counters_json(after)}};
    if (before && after) {
      const double prompt = after->prompt_tokens - before->prompt_tokens;
      server_json["prefix_cache_hit_rate"] =
          prompt > 0 ? (after->prompt_tokens_cached - before->prompt_tokens_cached) / prompt : 0.0;
      server_json["preemptions"] = after->preemptions - before->preemptions;
      server_json["idle_at_end"] = after->idle();
    }
    const json out = {{"options", options_json(o, target)},
                      {"summary", server::to_json(summary)},
                      {"deadline_hit", run.deadline_hit},
                      {"server", std::move(server_json)},
                      {"failures", std::move(failures)},
                      {"exit_code", exit_code},
                      {"requests", std::move(requests)}};
    std::ofstream f(*o.json_path);
    check(static_cast<bool>(f), "cannot write {}", *o.json_path);
    f << out.dump(1) << "\n";
    check(static_cast<bool>(f), "cannot write {}", *o.json_path);
  }
  return exit_code;
}

const CommandRegistrar kRegistrar{
    "bench-serve",
    "load an OpenAI-compatible server with streamed completions; report throughput, TTFT, TPOT, ITL (as vllm bench serve)",
    [](CLI::App& app) {
      auto o = std::make_shared<BenchServeOptions>();
      auto* url = app.add_option("--url", o->url, "the server, http://HOST:PORT")->capture_default_str();
      auto* host = app.add_option("--host", o->host, "instead of --url: the server's host (with --port)");
      auto* port = app.add_option("--port", o->port, "instead of --url: the server's port")->check(CLI::Range(1, 65535));
      url->excludes(host)->excludes(port);
      app.add_option("--api_key", o->api_key, "sent as 'Authorization: Bearer KEY' (or set LLAMA3_API_KEY)")
          ->envname("LLAMA3_API_KEY");
      app.add_option("--model", o->model, "the requests' model (default: the first of GET /v1/models)");
      app.add_option("--requests", o->load.requests, "requests in all")->check(CLI::PositiveNumber)->capture_default_str();
      app.add_option("--concurrency", o->load.concurrency, "requests in flight at most (a thread and connection each)")
          ->check(CLI::Range(1, 1024))
          ->capture_default_str();
      app.add_option("--request_rate", o->request_rate,
                     "requests per second, Poisson arrivals (inf: all at once, limited by --concurrency)")
          ->capture_default_str();
      app.add_option("--prompt_tokens", o->prompt_tokens,
                     "prompt tokens after the shared prefix, MIN,MAX (uniform) or N; random token ids sent to /v1/completions")
          ->capture_default_str();
      app.add_option("--shared_prefix", o->load.shared_prefix,
                     "tokens every prompt starts with, before its own (a common system prompt: exercises prefix caching)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--max_tokens", o->load.max_tokens, "tokens to generate per request")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--cancel_fraction", o->load.cancel_fraction,
                     "share of requests that close the connection after 1-3 streamed text events")
          ->check(CLI::Range(0.0, 1.0))
          ->capture_default_str();
      app.add_flag("--ignore_eos,!--no_ignore_eos", o->load.ignore_eos,
                   "ask the server to generate max_tokens whatever the model says (vLLM's ignore_eos; on by default)")
          ->capture_default_str();
      app.add_option("--seed", o->load.seed, "prompts, lengths, arrivals, cancellations and sampling")
          ->capture_default_str();
      app.add_option("--timeout_s", o->load.timeout_s,
                     "deadline of the run: requests in flight are stopped and counted failed, the rest not sent")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--idle_wait_s", o->idle_wait_s,
                     "after the run, how long the server may take to report 0 running requests and 0 KV blocks used")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--json", o->json_path, "also write the results, failures and every request as JSON");
      return [o] { return run_bench_serve(*o); };
    }};

}  // namespace
}  // namespace llama3::apps
