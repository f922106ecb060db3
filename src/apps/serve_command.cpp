// `llama3 serve`: the OpenAI-compatible HTTP server (src/server/) over the engine. Prints one
// line once listening; SIGINT or SIGTERM stop it gracefully (requests in flight are cancelled,
// their clients answered) and it exits 0, as a service manager expects of an asked-for stop.
#include <fmt/core.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "apps/cli_options.h"
#include "apps/command.h"
#include "core/error.h"
#include "llama3/engine.h"
#include "server/http_server.h"

namespace llama3::apps {
namespace {

struct ServeOptions {
  ModelOptions model;
  std::optional<std::string> tokenizer;
  std::string host = "127.0.0.1";
  int port = 8080;
  EngineOptions engine;  // the serving fields; the model's come from `model`
  bool no_prefix_caching = false;
  std::string api_key;
};

// The signal handler only writes a byte to this pipe (async-signal-safe); a thread reads it and
// stops the server, which cannot be done from a handler.
int g_stop_pipe[2] = {-1, -1};
std::atomic<int> g_signal{0};

void on_stop_signal(int sig) {
  g_signal = sig;
  const char byte = 's';
  [[maybe_unused]] const ssize_t n = ::write(g_stop_pipe[1], &byte, 1);
}

int run_serve(const ServeOptions& o) {
  o.model.apply_threads();
  EngineOptions eo = o.engine;
  eo.model = o.model.spec(o.tokenizer);
  eo.prefix_caching = !o.no_prefix_caching;
  if (!o.model.settle_memory(eo)) return 0;
  Engine engine(eo);
  const ModelInfo& info = engine.model_info();

  server::ServerOptions so;
  so.api_key = o.api_key;
  // Every request the engine can hold, running or queued, keeps a connection thread; a few more
  // answer /health and /metrics meanwhile.
  so.threads = static_cast<size_t>(std::min<int64_t>(eo.max_batch + eo.max_queue, 1024)) + 8;
  server::HttpServer http(engine, so);
  const int port = http.bind(o.host, o.port);

  check(::pipe(g_stop_pipe) == 0, "cannot create a pipe for signal handling");
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::thread watcher([&http] {
    char byte = 0;
    while (::read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    if (byte == 's') {
      fmt::print(stderr, "llama3 serve: {} received, stopping\n", g_signal == SIGINT ? "SIGINT" : "SIGTERM");
      http.stop();
    }
  });

  fmt::print("llama3 serve: listening on http://{}:{} (model {}, {} layers, {} weights, max_batch {}, max_seq_len {}{})\n",
             o.host, port, info.name, info.n_layers, info.weights, eo.max_batch, info.max_seq_len,
             o.api_key.empty() ? "" : ", API key required");
  std::fflush(stdout);
  http.run();

  // run() also returns without a signal (the server failed): wake the watcher to end it.
  const char quit = 'q';
  [[maybe_unused]] const ssize_t n = ::write(g_stop_pipe[1], &quit, 1);
  watcher.join();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  ::close(g_stop_pipe[0]);
  ::close(g_stop_pipe[1]);
  return 0;
}

const CommandRegistrar kRegistrar{
    "serve", "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, /v1/models, /metrics)",
    [](CLI::App& app) {
      auto o = std::make_shared<ServeOptions>();
      o->model.add_to(app);
      app.add_option("--tokenizer", o->tokenizer,
                     "tokenizer.json or tokenizer.model (default: with the weights, else built-in)");
      app.add_option("--host", o->host, "address to listen on")->capture_default_str();
      app.add_option("--port", o->port, "port to listen on (0: any free port, printed)")
          ->check(CLI::Range(0, 65535))
          ->capture_default_str();
      app.add_option("--max_batch", o->engine.max_batch, "requests decoding together (1..32)")
          ->check(CLI::Range(1, 32))
          ->capture_default_str();
      app.add_option("--max_queue", o->engine.max_queue,
                     "requests waiting beyond the running batch; more are answered 429")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--max_seq_len", o->engine.max_seq_len, "prompt + generated tokens of one request")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--prefill_chunk", o->engine.prefill_chunk, "prompt tokens per forward pass of a prefill")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_flag("--no_prefix_caching", o->no_prefix_caching, "do not share KV blocks of common prompt prefixes");
      app.add_flag("--check_finite", o->engine.check_finite,
                   "fail a request whose logits hold NaN/Inf, counted in /metrics (the stress test's check; one "
                   "more pass over the vocabulary's logits per token)");
      app.add_option("--kv_memory", o->engine.kv_memory_gb,
                     "KV cache pool in GiB (default: what fits beside the weights with a margin)")
          ->check(CLI::PositiveNumber);
      app.add_option("--api_key", o->api_key,
                     "require 'Authorization: Bearer KEY' on /v1/* (or set LLAMA3_API_KEY, which keeps it out of ps)")
          ->envname("LLAMA3_API_KEY");
      return [o] { return run_serve(*o); };
    }};

}  // namespace
}  // namespace llama3::apps
