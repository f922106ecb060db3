#pragma once
// What the HTTP tests share: one server over the tiny engine per test process, request bodies,
// the engine called directly for comparison, and checks of errors, idleness and metrics.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "server_test_util.h"

namespace llama3::server::testing {

using namespace std::chrono_literals;

inline TestServer& shared_server() {
  static TestServer server(tiny_engine_options());
  return server;
}

inline const json kChat = {{"messages", {{{"role", "system"}, {"content", "You are terse."}}, {{"role", "user"}, {"content", "Say hi."}}}}};

inline json with(json body, const json& extra) {
  body.update(extra);
  return body;
}

// A fixed-length sampled completion: same seed, same text.
inline const json kSampling = {{"temperature", 0.8}, {"top_p", 0.95}, {"top_k", 50}, {"seed", 1234}, {"ignore_eos", true}};

struct Direct {
  std::string text;
  std::vector<int32_t> tokens;
  Completion done;
};

// The engine called directly, as an embedding program would.
inline Direct generate_direct(Engine& engine, GenerationRequest request) {
  auto result = std::make_shared<Direct>();
  auto finished = std::make_shared<std::promise<void>>();
  std::future<void> ready = finished->get_future();
  RequestCallbacks callbacks;
  callbacks.on_token = [result](const TokenEvent& e) {
    result->text += e.text;
    result->tokens.push_back(e.token);
  };
  callbacks.on_done = [result, finished](const Completion& c) {
    result->done = c;
    finished->set_value();
  };
  engine.submit(std::move(request), std::move(callbacks));
  EXPECT_EQ(ready.wait_for(60s), std::future_status::ready);
  return *result;
}

inline GenerationRequest direct_request(int64_t max_tokens) {
  GenerationRequest r;
  r.sampling = {0.8f, 0.95f, 50, 1234};
  r.ignore_eos = true;
  r.max_tokens = max_tokens;
  return r;
}

inline void expect_error(const HttpResult& r, int status, const std::string& type, const json& param = nullptr,
                  const json& code = nullptr) {
  EXPECT_EQ(r.status, status) << r.body;
  const json j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
  const json& e = j["error"];
  for (const char* key : {"message", "type", "param", "code"}) EXPECT_TRUE(e.contains(key)) << key << " in " << r.body;
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << r.body;
  EXPECT_EQ(e["type"], type) << r.body;
  if (!param.is_null()) {
    EXPECT_EQ(e["param"], param) << r.body;
  }
  if (!code.is_null()) {
    EXPECT_EQ(e["code"], code) << r.body;
  }
}

// Polls until the engine holds no request and no KV block, or `limit` passes.
inline bool engine_idle_within(Engine& engine, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const EngineMetrics m = engine.metrics();
    if (m.requests_running == 0 && m.requests_waiting == 0 && m.kv_blocks_used == 0) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

// The value of the sample line `name` (with its labels) in a /metrics text; -1 when absent.
inline double metric(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1.0;
  return std::stod(text.substr(at + name.size() + 2));
}

}  // namespace llama3::server::testing
