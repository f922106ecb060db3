#include "server/http_server.h"

#include <fmt/core.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/socket.h>
#include <thread>

#include "server/api_error.h"
#include "server/generation_run.h"
#include "server/lifo_thread_pool.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/openai_response.h"

namespace llama3::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Connections the kernel queues before the accept loop takes them. cpp-httplib 0.11 listens
// with a backlog of 5 (compiled into Debian's library): 64 clients connecting at once overflow
// it, the kernel falls back to SYN cookies, and some of those connections are reset before a
// byte is answered (`llama3 bench-serve --concurrency 64` saw 5-25% of them fail).
constexpr int kListenBacklog = 1024;

ApiError from_engine_error(const EngineError& e) {
  switch (e.kind()) {
    case EngineError::Kind::invalid_request:
      return ApiError(400, "invalid_request_error", e.what());
    case EngineError::Kind::queue_full:
      return ApiError(429, "requests", e.what(), std::nullopt, "rate_limit_exceeded");
    case EngineError::Kind::shutting_down:
      return ApiError(503, "server_error", e.what(), std::nullopt, "service_unavailable");
  }
  return ApiError(500, "server_error", e.what());
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  // Clients back off by Retry-After (the OpenAI SDKs read it).
  if (e.status() == 429 || e.status() == 503) res.set_header("Retry-After", "1");
  res.set_content(json_text(e.to_json()), "application/json");
}

// Compares in time independent of where the strings differ, so the key cannot be guessed a
// byte at a time from response times (its length may show; that is accepted practice).
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// The metrics label of a path: our routes by name, everything else as one value so that
// scanners cannot grow the label set.
std::string route_label(const std::string& path) {
  for (const char* route : {"/v1/chat/completions", "/v1/completions", "/health", "/metrics"}) {
    if (path == route) return route;
  }
  if (path == "/v1/models" || path.starts_with("/v1/models/")) return "/v1/models";
  return "other";
}

}  // namespace

struct HttpServer::Impl {
  Engine& engine;
  ServerOptions options;
  httplib::Server http;
  int listen_socket = -1;  // the last socket httplib created: the one it bound
  ServerMetrics metrics;
  const int64_t started_unix =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  // Engine requests in flight, so that stop() can cancel them and free their handlers.
  std::mutex active_mutex;
  std::set<uint64_t> active;
  bool stopping = false;

  std::atomic<bool> run_entered{false};
  std::atomic<bool> run_returned{false};

  // Registers a request for stop(); cancels it at once if the server is already stopping.
  struct ActiveRequest {
    Impl& impl;
    uint64_t id;
    ActiveRequest(Impl& i, uint64_t request_id) : impl(i), id(request_id) {
      std::lock_guard lock(impl.active_mutex);
      impl.active.insert(id);
      if (impl.stopping) impl.engine.cancel(id);
    }
    ~ActiveRequest() {
      std::lock_guard lock(impl.active_mutex);
      impl.active.erase(id);
    }
    ActiveRequest(const ActiveRequest&) = delete;
    ActiveRequest& operator=(const ActiveRequest&) = delete;
  };

  Impl(Engine& e, ServerOptions o) : engine(e), options(std::move(o)) {
    const size_t threads = std::max<size_t>(options.threads, 2);
    http.new_task_queue = [threads] { return new LifoThreadPool(threads); };  // httplib owns and deletes it
    http.set_payload_max_length(options.max_body_bytes);
    // Each SSE chunk goes out at once rather than waiting for Nagle's coalescing.
    http.set_tcp_nodelay(true);
    // httplib's default also sets SO_REUSEPORT, which lets a second server bind a port in use
    // and silently share its connections; a busy port must be an error.
    http.set_socket_options([this](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      listen_socket = sock;
    });
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return authorize(req, res) ? httplib::Server::HandlerResponse::Unhandled
                                 : httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // our own error, already in OpenAI's shape
      const ApiError e = res.status == 404
                             ? ApiError(404, "invalid_request_error",
                                        fmt::format("unknown request URL: {} {}", req.method, req.path), std::nullopt,
                                        "unknown_url")
                             : ApiError(res.status, res.status >= 500 ? "server_error" : "invalid_request_error",
                                        fmt::format("HTTP {} on {} {}", res.status, req.method, req.path));
      res.set_content(json_text(e.to_json()), "application/json");
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, ApiError(500, "server_error", "internal error: " + what));
    });
    // Counted as the response's head goes out (after the error handler set its final status),
    // not in the logger, which runs after the body: a client must find its request in /metrics.
    http.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      metrics.count_request(route_label(req.path), res.status);
    });

    http.Post("/v1/chat/completions", guarded(Endpoint::chat_completions));
    http.Post("/v1/completions", guarded(Endpoint::completions));
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(json_text({{"object", "list"}, {"data", json::array({model_json()})}}), "application/json");
    });
    http.Get("/v1/models/(.+)", [this](const httplib::Request& req, httplib::Response& res) {
      try {
        check_model(req.matches[1].str());
        res.set_content(json_text(model_json()), "application/json");
      } catch (const ApiError& e) {
        send_error(res, e);
      }
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(engine.metrics()), "text/plain; version=0.0.4; charset=utf-8");
    });
  }

  bool authorize(const httplib::Request& req, httplib::Response& res) const {
    if (options.api_key.empty() || !req.path.starts_with("/v1/")) return true;
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (header.starts_with(kBearer) && same_secret(std::string_view(header).substr(kBearer.size()), options.api_key)) {
      return true;
    }
    send_error(res, ApiError(401, "invalid_request_error",
                             header.empty() ? "no API key given: send the header 'Authorization: Bearer <key>'"
                                            : "incorrect API key",
                             std::nullopt, "invalid_api_key"));
    return false;
  }

  json model_json() const {
    const ModelInfo& info = engine.model_info();
    return {{"id", info.name},
            {"object", "model"},
            {"created", started_unix},
            {"owned_by", "llama3"},
            {"max_model_len", info.max_seq_len}};
  }

  void check_model(const std::optional<std::string>& model) const {
    if (!model || *model == engine.model_info().name) return;
    throw ApiError(404, "invalid_request_error",
                   fmt::format("the model '{}' does not exist; this server serves '{}'", *model,
                               engine.model_info().name),
                   "model", "model_not_found");
  }

  httplib::Server::Handler guarded(Endpoint endpoint) {
    return [this, endpoint](const httplib::Request& req, httplib::Response& res) {
      try {
        generate(endpoint, req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const EngineError& e) {
        send_error(res, from_engine_error(e));
      } catch (const std::exception& e) {
        fmt::print(stderr, "llama3 serve: {} {}: internal error: {}\n", req.method, req.path, e.what());
        send_error(res, ApiError(500, "server_error", std::string("internal error: ") + e.what()));
      }
    };
  }

  void generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
    const Clock::time_point arrived = Clock::now();
    OpenAiRequest request = parse_request(endpoint, req.body);
    check_model(request.model);
    const auto prompt_tokens = static_cast<int64_t>(engine.encode_prompt(request.generation).size());
    fit_to_context(request, prompt_tokens, engine.model_info().max_seq_len);
    const bool stream = request.stream;
    auto run = std::make_shared<GenerationRun>(engine, metrics, std::move(request),
                                               make_header(endpoint, engine.model_info().name), prompt_tokens, arrived);
    run->start();
    auto registered = std::make_shared<ActiveRequest>(*this, run->id());
    if (!stream) {
      res.set_content(json_text(run->wait_for_completion()), "application/json");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    // The provider runs on this connection's thread after the handler returns; the run (and
    // its engine request) lives until httplib drops the provider: when the stream ended, the
    // client went away or the server stops. The run's destructor cancels what is unfinished.
    res.set_chunked_content_provider(
        "text/event-stream",
        [run, registered](size_t, httplib::DataSink& sink) {
          if (run->pump([&sink](std::string_view bytes) { return sink.write(bytes.data(), bytes.size()); })) {
            return true;
          }
          if (!run->ended()) return false;  // the client is gone
          sink.done();
          return true;
        });
  }
};

HttpServer::HttpServer(Engine& engine, ServerOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(options))) {
  // A write to a client that has gone must fail with EPIPE, not kill the process (httplib
  // sends without MSG_NOSIGNAL).
  std::signal(SIGPIPE, SIG_IGN);
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind(const std::string& host, int port) {
  const int bound = port == 0 ? impl_->http.bind_to_any_port(host) : (impl_->http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) throw std::runtime_error(fmt::format("cannot listen on {}:{}", host, port));
  // listen() again on a listening socket only changes its backlog.
  if (impl_->listen_socket >= 0 && ::listen(impl_->listen_socket, kListenBacklog) != 0) {
    throw std::runtime_error(fmt::format("cannot listen on {}:{} with a backlog of {}", host, port, kListenBacklog));
  }
  return bound;
}

void HttpServer::run() {
  impl_->run_entered = true;
  {
    std::lock_guard lock(impl_->active_mutex);
    if (impl_->stopping) {
      impl_->run_returned = true;
      return;
    }
  }
  impl_->http.listen_after_bind();
  impl_->run_returned = true;
}

void HttpServer::stop() {
  {
    std::lock_guard lock(impl_->active_mutex);
    impl_->stopping = true;
    for (uint64_t id : impl_->active) impl_->engine.cancel(id);
  }
  // httplib's stop() does nothing until its accept loop runs: wait for run() to get there.
  while (impl_->run_entered && !impl_->run_returned && !impl_->http.is_running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->http.stop();
}

}  // namespace llama3::server
