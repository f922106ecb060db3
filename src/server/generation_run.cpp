#include "server/generation_run.h"

namespace llama3::server {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// How long a handler waits for events before looking again (at a stopping server, a gone client).
constexpr milliseconds kPoll{50};
// After a stop string cancelled the request, how long to wait for the engine's final counts.
constexpr milliseconds kDoneGrace{5000};
// An SSE comment after this much silence (a long queue or prefill): a client that has gone is
// found by the write failing, as it is between tokens.
constexpr milliseconds kKeepAlive{2000};

double seconds(GenerationRun::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void append(OutputDelta& to, OutputDelta&& from) {
  to.text += from.text;
  for (LogprobEntry& e : from.logprobs) to.logprobs.push_back(std::move(e));
}

}  // namespace

GenerationRun::GenerationRun(Engine& engine, ServerMetrics& metrics, OpenAiRequest request, ResponseHeader header,
                             int64_t prompt_tokens, Clock::time_point arrived)
    : engine_(engine),
      metrics_(metrics),
      request_(std::move(request)),
      header_(std::move(header)),
      prompt_tokens_(prompt_tokens),
      arrived_(arrived),
      assembler_(request_.stop, request_.logprobs,
                 [&engine](int32_t token) { return engine.decode({token}); }) {}

GenerationRun::~GenerationRun() { cancel_engine_request(); }

void GenerationRun::cancel_engine_request() {
  if (submitted_ && !engine_done_ && !cancelled_) {
    cancelled_ = true;
    engine_.cancel(id_);
  }
}

void GenerationRun::start() {
  id_ = engine_.submit(request_.generation, RequestStream::callbacks(stream_));
  submitted_ = true;
}

OutputDelta GenerationRun::take(std::vector<StreamEvent>& events) {
  OutputDelta delta;
  for (StreamEvent& e : events) {
    if (e.token) {
      if (finish_reason_ || failure_) continue;  // after a stop string: tokens already in flight
      if (last_token_at_) {
        metrics_.observe_inter_token_latency(seconds(e.at - *last_token_at_));
      } else {
        metrics_.observe_time_to_first_token(seconds(e.at - arrived_));
      }
      last_token_at_ = e.at;
      append(delta, assembler_.add(*e.token));
      if (assembler_.stopped()) {
        finish_reason_ = "stop";
        cancel_engine_request();
      }
      continue;
    }
    engine_done_ = *e.done;
    if (finish_reason_ || failure_) continue;
    switch (e.done->reason) {
      case FinishReason::stop:
      case FinishReason::length:
        append(delta, assembler_.finish());
        finish_reason_ = e.done->reason == FinishReason::stop ? "stop" : "length";
        break;
      case FinishReason::cancelled:
        failure_ = ApiError(503, "server_error", "the request was cancelled: the server is shutting down",
                            std::nullopt, "service_unavailable");
        break;
      case FinishReason::error:
        failure_ = ApiError(500, "server_error", "generation failed: " + e.done->error);
        break;
    }
  }
  return delta;
}

void GenerationRun::wait_for_engine_done() {
  const Clock::time_point deadline = Clock::now() + kDoneGrace;
  while (!engine_done_ && Clock::now() < deadline) {
    std::vector<StreamEvent> events = stream_->pop(kPoll);
    take(events);
  }
}

Usage GenerationRun::usage() const {
  Usage u;
  u.prompt_tokens = engine_done_ ? engine_done_->prompt_tokens : prompt_tokens_;
  u.cached_prompt_tokens = engine_done_ ? engine_done_->cached_prompt_tokens : 0;
  // A stop string ends the completion at the token that completed it, whatever the engine
  // generated before the cancel reached it.
  u.completion_tokens =
      engine_done_ && !assembler_.stopped() ? engine_done_->completion_tokens : assembler_.tokens();
  return u;
}

json GenerationRun::logprobs(const OutputDelta& delta) const {
  return request_.logprobs ? logprobs_json(header_.endpoint, delta.logprobs) : json(nullptr);
}

json GenerationRun::wait_for_completion() {
  OutputDelta all;
  while (!finish_reason_ && !failure_) {
    std::vector<StreamEvent> events = stream_->pop(kPoll);
    append(all, take(events));
  }
  if (failure_) throw *failure_;
  wait_for_engine_done();
  metrics_.observe_request_duration(seconds(Clock::now() - arrived_));
  return completion_json(header_, all.text, *finish_reason_, logprobs(all), usage());
}

bool GenerationRun::pump(const Writer& write) {
  if (ended_) return false;
  const bool include_usage = request_.include_usage;
  auto send = [&](const std::string& bytes) {
    if (!write(bytes)) {
      cancel_engine_request();
      return false;
    }
    last_write_ = Clock::now();
    return true;
  };
  if (header_.endpoint == Endpoint::chat_completions && !sent_role_) {
    sent_role_ = true;
    if (!send(sse_event(chunk_json(header_, "", json(nullptr), std::nullopt, true, include_usage)))) return false;
  }

  std::vector<StreamEvent> events = stream_->pop(kPoll);
  const OutputDelta delta = take(events);
  if (!delta.empty() &&
      !send(sse_event(chunk_json(header_, delta.text, logprobs(delta), std::nullopt, false, include_usage)))) {
    return false;
  }
  if (failure_) {
    // Headers (200) are out already: the error goes in the stream, as vLLM sends it.
    ended_ = true;
    if (send(sse_event(failure_->to_json()))) send(std::string(kSseDone));
    return false;
  }
  if (finish_reason_) {
    ended_ = true;
    metrics_.observe_request_duration(seconds(Clock::now() - arrived_));
    if (!send(sse_event(chunk_json(header_, "", json(nullptr), *finish_reason_, false, include_usage)))) return false;
    if (include_usage) {
      wait_for_engine_done();
      if (!send(sse_event(usage_chunk_json(header_, usage())))) return false;
    }
    send(std::string(kSseDone));
    return false;
  }
  if (events.empty() && Clock::now() - last_write_ > kKeepAlive) return send(": keep-alive\n\n");
  return true;
}

}  // namespace llama3::server
