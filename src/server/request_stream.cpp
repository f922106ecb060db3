#include "server/request_stream.h"

namespace llama3::server {

RequestCallbacks RequestStream::callbacks(const std::shared_ptr<RequestStream>& stream) {
  RequestCallbacks c;
  c.on_token = [stream](const TokenEvent& e) { stream->push({e, std::nullopt, std::chrono::steady_clock::now()}); };
  c.on_done = [stream](const Completion& d) { stream->push({std::nullopt, d, std::chrono::steady_clock::now()}); };
  return c;
}

void RequestStream::push(StreamEvent event) {
  {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  ready_.notify_one();
}

std::vector<StreamEvent> RequestStream::pop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  std::vector<StreamEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

}  // namespace llama3::server
