#pragma once
// One generation request from submit to its last byte: feeds the engine's events through the
// stop-string matcher, records latency metrics, and produces either the whole JSON answer or
// the SSE chunks. Owned by the HTTP handler's thread; nothing here knows about sockets.
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "llama3/engine.h"
#include "server/api_error.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "server/output_assembler.h"
#include "server/request_stream.h"

namespace llama3::server {

class GenerationRun {
 public:
  using Clock = std::chrono::steady_clock;
  // Sends bytes to the client; false when the client is gone.
  using Writer = std::function<bool(std::string_view)>;

  GenerationRun(Engine& engine, ServerMetrics& metrics, OpenAiRequest request, ResponseHeader header,
                int64_t prompt_tokens, Clock::time_point arrived);
  ~GenerationRun();  // cancels the engine request if it has not ended (a client that left)
  GenerationRun(const GenerationRun&) = delete;
  GenerationRun& operator=(const GenerationRun&) = delete;

  // Submits to the engine; throws EngineError as submit() does.
  void start();
  uint64_t id() const { return id_; }

  // Non-streamed: waits for the end and returns the chat.completion / text_completion object.
  // Throws ApiError when the engine failed or the request was cancelled under it.
  nlohmann::json wait_for_completion();

  // Streamed: waits briefly for events and writes what they complete as SSE events. Returns
  // true while there is more to come; false once the stream was ended with [DONE] (ended())
  // or the client is gone (its engine request is then cancelled).
  bool pump(const Writer& write);
  bool ended() const { return ended_; }

 private:
  OutputDelta take(std::vector<StreamEvent>& events);
  void wait_for_engine_done();
  Usage usage() const;
  nlohmann::json logprobs(const OutputDelta& delta) const;
  void cancel_engine_request();

  Engine& engine_;
  ServerMetrics& metrics_;
  OpenAiRequest request_;
  ResponseHeader header_;
  int64_t prompt_tokens_;
  Clock::time_point arrived_;
  std::shared_ptr<RequestStream> stream_ = std::make_shared<RequestStream>();
  OutputAssembler assembler_;
  uint64_t id_ = 0;
  bool submitted_ = false;
  bool cancelled_ = false;

  std::optional<Clock::time_point> last_token_at_;
  std::optional<Completion> engine_done_;
  std::optional<std::string> finish_reason_;  // set when the answer is complete
  std::optional<ApiError> failure_;

  bool sent_role_ = false;
  bool ended_ = false;
  Clock::time_point last_write_ = Clock::now();
};

}  // namespace llama3::server
