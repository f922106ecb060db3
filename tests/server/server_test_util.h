#pragma once
// An in-process server for the HTTP tests: an Engine on the 1B preset's shape with one layer of
// random weights (real tokenizer, milliseconds per token) behind an HttpServer on 127.0.0.1,
// and raw-HTTP helpers (httplib's client) that parse JSON and SSE.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "llama3/engine.h"
#include "server/http_server.h"

namespace llama3::server::testing {

using nlohmann::json;

#define SKIP_WITHOUT_TOKENIZER()                                                                   \
  if (!std::filesystem::exists(LLAMA3_DEFAULT_TOKENIZER))                                          \
  GTEST_SKIP() << LLAMA3_DEFAULT_TOKENIZER << " is missing (run scripts/setup.sh)"

// The tests' engine: small pool, short context, chunks of one block so that prefix-cache hits
// show on short prompts.
inline EngineOptions tiny_engine_options() {
  EngineOptions o;
  o.model.preset = "Llama-3.2-1B";
  o.model.weights = "random";
  o.model.layers = 1;
  o.max_batch = 4;
  o.max_seq_len = 256;
  o.max_queue = 16;
  o.prefill_chunk = 32;
  o.kv_blocks = 64;
  o.block_size = 32;
  return o;
}

class TestServer {
 public:
  explicit TestServer(const EngineOptions& engine_options, ServerOptions server_options = {})
      : engine_(std::make_unique<Engine>(engine_options)),
        http_(std::make_unique<HttpServer>(*engine_, std::move(server_options))),
        port_(http_->bind("127.0.0.1", 0)),
        thread_([this] { http_->run(); }) {}
  // Shares another server's engine (another set of server options over the same model).
  TestServer(Engine& engine, ServerOptions server_options)
      : http_(std::make_unique<HttpServer>(engine, std::move(server_options))),
        port_(http_->bind("127.0.0.1", 0)),
        thread_([this] { http_->run(); }) {}
  ~TestServer() {
    http_->stop();
    thread_.join();
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  Engine& engine() { return *engine_; }
  int port() const { return port_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60);
    return c;
  }

 private:
  std::unique_ptr<Engine> engine_;  // null when sharing
  std::unique_ptr<HttpServer> http_;
  int port_;
  std::thread thread_;
};

struct HttpResult {
  int status = 0;
  httplib::Headers headers;
  std::string body;
  json json_body() const { return json::parse(body); }
};

inline HttpResult post(const TestServer& s, const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
  httplib::Client c = s.client();
  const httplib::Result r = c.Post(path, headers, body, "application/json");
  if (!r) throw std::runtime_error("POST " + path + " failed: " + httplib::to_string(r.error()));
  return {r->status, r->headers, r->body};
}

inline HttpResult post(const TestServer& s, const std::string& path, const json& body,
                       const httplib::Headers& headers = {}) {
  return post(s, path, body.dump(), headers);
}

inline HttpResult get(const TestServer& s, const std::string& path, const httplib::Headers& headers = {}) {
  httplib::Client c = s.client();
  const httplib::Result r = c.Get(path, headers);
  if (!r) throw std::runtime_error("GET " + path + " failed: " + httplib::to_string(r.error()));
  return {r->status, r->headers, r->body};
}

// The events of an SSE body: each "data: {...}" parsed; `done` when it ended with [DONE].
struct SseStream {
  std::vector<json> events;
  bool done = false;
  std::string text() const;  // the chunks' text (delta.content or text) concatenated
};

inline SseStream parse_sse(const std::string& body) {
  SseStream s;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "an SSE event without its blank line: " << body.substr(pos);
    if (end == std::string::npos) break;
    const std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    if (event.starts_with(":")) continue;  // a comment (keep-alive)
    EXPECT_TRUE(event.starts_with("data: ")) << event;
    EXPECT_FALSE(s.done) << "an event after [DONE]: " << event;
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      s.done = true;
    } else {
      s.events.push_back(json::parse(data));
    }
  }
  return s;
}

inline std::string SseStream::text() const {
  std::string out;
  for (const json& e : events) {
    if (!e.contains("choices")) continue;
    for (const json& c : e["choices"]) {
      if (c.contains("delta") && c["delta"].contains("content")) out += c["delta"]["content"].get<std::string>();
      if (c.contains("text")) out += c["text"].get<std::string>();
    }
  }
  return out;
}

}  // namespace llama3::server::testing
