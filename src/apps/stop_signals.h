#pragma once
// SIGINT and SIGTERM as a request to stop, for a command that finishes cleanly (cancels its
// work, prints and writes what it has) instead of dying mid-write. While an object lives, the
// first such signal is recorded in received(); the handler resets itself, so a second one
// kills the process as usual (a user pressing Ctrl-C twice means it). The destructor restores
// the previous handlers.
#include <signal.h>

#include <atomic>

namespace llama3::apps {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // 0, or the signal number received.
  const std::atomic<int>& received() const;
  // The conventional exit code of a command stopped by `signal`: 128 + its number.
  static int exit_code(int signal) { return 128 + signal; }

 private:
  struct sigaction previous_int_ = {}, previous_term_ = {};
};

}  // namespace llama3::apps
