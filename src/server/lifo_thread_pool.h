#pragma once
// The HTTP server's connection threads: cpp-httplib runs each connection on a task-queue thread
// for its whole life (a streamed answer holds its thread), so the server needs up to one thread
// per connection it may hold (max_batch + max_queue + a few: ~300 by default).
//
// httplib's own ThreadPool starts them all at once and wakes them in turn, so over a long run
// every one of them serves connections, touches its stack and fills glibc's per-thread malloc
// cache (up to ~235 KiB each, counted as in use): the server's RSS crept up ~0.12 MiB per 100
// requests for thousands of requests (docs/PERF.md). This pool starts a thread only when no idle
// one is left and hands each connection to the most recently idle thread (last in, first out),
// so only as many threads as connections were ever open at once exist and do the work: their
// caches fill early and the growth slows (a third of it over 2,000 requests, docs/PERF.md).
#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace llama3::server {

class LifoThreadPool final : public httplib::TaskQueue {
 public:
  explicit LifoThreadPool(size_t max_threads);
  ~LifoThreadPool() override;
  LifoThreadPool(const LifoThreadPool&) = delete;
  LifoThreadPool& operator=(const LifoThreadPool&) = delete;

  // Runs `fn` on an idle thread (the one idle the shortest time), a new thread while fewer than
  // max_threads exist, or else as soon as a thread is free (in arrival order).
  void enqueue(std::function<void()> fn) override;
  // Runs what is queued, then stops and joins every thread. Idempotent; nothing may be
  // enqueued after it (httplib stops accepting first).
  void shutdown() override;

  size_t threads_started() const;
  size_t threads_idle() const;

 private:
  struct Worker {
    std::condition_variable wake;
    std::function<void()> job;  // set by enqueue while the worker is idle
  };
  void run(Worker& self);

  const size_t max_threads_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<Worker*> idle_;                 // back: idle the shortest time
  std::deque<std::function<void()>> pending_;  // every thread busy
  bool stopping_ = false;
};

}  // namespace llama3::server
