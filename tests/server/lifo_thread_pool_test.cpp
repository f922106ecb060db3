// The server's connection pool: every job runs, no more than max_threads at once, threads start
// only when none is idle, and the most recently idle thread takes the next job (so a long run
// keeps using the same few threads instead of cycling through hundreds).
#include "server/lifo_thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

namespace llama3::server {
namespace {

using namespace std::chrono_literals;

// A gate the jobs wait at until the test opens it.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  // Waits until `n` jobs are at the gate; false after 10 s.
  bool wait_for_waiting(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int waiting_ = 0;
  bool open_ = false;
};

// Waits (up to 10 s) until at least `n` threads are idle.
void wait_for_idle(const LifoThreadPool& pool, size_t n) {
  for (int spin = 0; spin < 100000 && pool.threads_idle() < n; ++spin) std::this_thread::sleep_for(100us);
  ASSERT_GE(pool.threads_idle(), n);
}

void wait_until_all_idle(const LifoThreadPool& pool) { wait_for_idle(pool, pool.threads_started()); }

TEST(LifoThreadPool, ConsecutiveJobsReuseOneThread) {
  LifoThreadPool pool(64);
  std::set<std::thread::id> ran_on;
  for (int i = 0; i < 50; ++i) {
    std::promise<std::thread::id> done;
    pool.enqueue([&] { done.set_value(std::this_thread::get_id()); });
    ran_on.insert(done.get_future().get());
    // Let the thread get back to the idle list before the next job comes.
    wait_until_all_idle(pool);
  }
  // httplib's ThreadPool would have started 64 threads and spread the 50 jobs over them.
  EXPECT_EQ(pool.threads_started(), 1u);
  EXPECT_EQ(ran_on.size(), 1u);
}

TEST(LifoThreadPool, TheMostRecentlyIdleThreadTakesTheNextJob) {
  LifoThreadPool pool(8);
  // Three jobs at once start three threads; they are then let go one by one, so the order in
  // which their threads become idle is known.
  Gate gates[3];
  std::promise<std::thread::id> ids[3];
  for (int i = 0; i < 3; ++i) {
    pool.enqueue([&, i] {
      ids[i].set_value(std::this_thread::get_id());
      gates[i].wait();
    });
  }
  std::thread::id thread_of[3];
  for (int i = 0; i < 3; ++i) thread_of[i] = ids[i].get_future().get();
  EXPECT_EQ(pool.threads_started(), 3u);
  for (int i : {2, 0, 1}) {  // job 1's thread goes idle last
    const size_t idle = pool.threads_idle();
    gates[i].open();
    wait_for_idle(pool, idle + 1);
  }
  ASSERT_EQ(pool.threads_idle(), 3u);
  std::promise<std::thread::id> next;
  pool.enqueue([&] { next.set_value(std::this_thread::get_id()); });
  EXPECT_EQ(next.get_future().get(), thread_of[1]);
  EXPECT_EQ(pool.threads_started(), 3u);
}

TEST(LifoThreadPool, NoMoreThanMaxThreadsRunAndTheRestWaitTheirTurn) {
  constexpr int kMax = 3, kJobs = 10;
  std::atomic<int> done = 0, running = 0, most = 0;
  Gate gate;
  {
    LifoThreadPool pool(kMax);
    for (int i = 0; i < kJobs; ++i) {
      pool.enqueue([&] {
        const int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        gate.wait();
        --running;
        ++done;
      });
    }
    ASSERT_TRUE(gate.wait_for_waiting(kMax));
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(done, 0);
    EXPECT_EQ(running, kMax);  // the other 7 wait for a thread
    EXPECT_EQ(pool.threads_started(), static_cast<size_t>(kMax));
    gate.open();
    // The destructor runs what is queued before it joins.
  }
  EXPECT_EQ(done, kJobs);
  EXPECT_EQ(most, kMax);
}

TEST(LifoThreadPool, ShutdownRunsQueuedJobsAndIsIdempotent) {
  std::atomic<int> done = 0;
  LifoThreadPool pool(1);
  Gate gate;
  pool.enqueue([&] {
    gate.wait();
    ++done;
  });
  for (int i = 0; i < 5; ++i) pool.enqueue([&] { ++done; });
  ASSERT_TRUE(gate.wait_for_waiting(1));
  std::thread opener([&] {
    std::this_thread::sleep_for(20ms);
    gate.open();
  });
  pool.shutdown();
  opener.join();
  EXPECT_EQ(done, 6);
  pool.shutdown();
  EXPECT_EQ(pool.threads_started(), 1u);
}

}  // namespace
}  // namespace llama3::server
