#include "server/lifo_thread_pool.h"

#include <algorithm>
#include <system_error>
#include <utility>

namespace llama3::server {

LifoThreadPool::LifoThreadPool(size_t max_threads) : max_threads_(std::max<size_t>(max_threads, 1)) {}

LifoThreadPool::~LifoThreadPool() { shutdown(); }

void LifoThreadPool::enqueue(std::function<void()> fn) {
  std::unique_lock lock(mutex_);
  if (!idle_.empty()) {
    Worker* w = idle_.back();
    idle_.pop_back();
    w->job = std::move(fn);
    lock.unlock();
    w->wake.notify_one();
    return;
  }
  if (threads_.size() < max_threads_ && !stopping_) {
    Worker& w = *workers_.emplace_back(std::make_unique<Worker>());
    w.job = std::move(fn);  // the new thread starts with it
    try {
      threads_.emplace_back([this, &w] { run(w); });
      return;
    } catch (const std::system_error&) {  // the system refused another thread: wait for one of ours
      fn = std::move(w.job);
      workers_.pop_back();
      if (threads_.empty()) throw;
    }
  }
  pending_.push_back(std::move(fn));
}

void LifoThreadPool::run(Worker& self) {
  std::function<void()> job;
  {
    std::lock_guard lock(mutex_);
    job = std::move(self.job);
    self.job = nullptr;
  }
  for (;;) {
    job();
    job = nullptr;  // the connection's captures die on this thread, outside the lock
    std::unique_lock lock(mutex_);
    if (!pending_.empty()) {
      job = std::move(pending_.front());
      pending_.pop_front();
      continue;
    }
    if (stopping_) return;
    idle_.push_back(&self);
    self.wake.wait(lock, [&] { return self.job != nullptr || stopping_; });
    if (!self.job) return;  // stopping, nothing handed over
    job = std::move(self.job);
    self.job = nullptr;
  }
}

void LifoThreadPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (Worker* w : idle_) w->wake.notify_one();
    idle_.clear();
    threads = std::move(threads_);
    threads_.clear();
  }
  for (std::thread& t : threads) t.join();
}

size_t LifoThreadPool::threads_started() const {
  std::lock_guard lock(mutex_);
  return workers_.size();
}

size_t LifoThreadPool::threads_idle() const {
  std::lock_guard lock(mutex_);
  return idle_.size();
}

}  // namespace llama3::server
