#pragma once
// Hands a request's events from the engine's thread to the HTTP handler's thread. The engine's
// callbacks only copy and notify (they run on the scheduler thread, which must not wait on a
// client); the handler waits here and does the slow part (JSON, socket writes).
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "llama3/engine.h"

namespace llama3::server {

struct StreamEvent {
  std::optional<TokenEvent> token;  // a token, or
  std::optional<Completion> done;   // the end of the request
  std::chrono::steady_clock::time_point at;  // when the engine reported it
};

class RequestStream {
 public:
  // Callbacks that push into `stream`; they keep it alive, so the engine may report after the
  // handler has gone (a client that disconnected).
  static RequestCallbacks callbacks(const std::shared_ptr<RequestStream>& stream);

  void push(StreamEvent event);
  // Everything queued, waiting up to `timeout` for the first event; empty on timeout.
  std::vector<StreamEvent> pop(std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<StreamEvent> events_;
};

}  // namespace llama3::server
