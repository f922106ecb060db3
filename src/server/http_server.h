#pragma once
// The OpenAI-compatible HTTP server over an Engine:
//   POST /v1/chat/completions, POST /v1/completions (JSON or SSE with "stream": true),
//   GET /v1/models, GET /v1/models/{id}, GET /health, GET /metrics (Prometheus text).
// Each connection is served on its own thread (cpp-httplib's pool); the engine reports tokens on
// its own thread and they are handed over per request (RequestStream). Errors are answered in
// OpenAI's {"error": {...}} shape. The engine must outlive the server.
#include <cstddef>
#include <memory>
#include <string>

#include "llama3/engine.h"

namespace llama3::server {

struct ServerOptions {
  std::string api_key;  // non-empty: /v1/* requires "Authorization: Bearer <api_key>"
  // Connections served at once; a streamed or waiting request holds one for its whole life,
  // so this should exceed what the engine can hold (max_batch + max_queue).
  size_t threads = 64;
  size_t max_body_bytes = size_t{64} << 20;
};

class HttpServer {
 public:
  HttpServer(Engine& engine, ServerOptions options);
  ~HttpServer();  // stops serving if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; port 0 picks a free one. Returns the port; throws
  // std::runtime_error when the address cannot be bound.
  int bind(const std::string& host, int port);
  // Serves until stop(); call after bind(), typically on its own thread.
  void run();
  // From any thread: cancels the requests in flight, stops accepting, and makes run() return
  // once their handlers have answered.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llama3::server
