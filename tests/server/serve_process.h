#pragma once
// `llama3 serve` as a child process for the tests: started with --port 0, its port read from
// the line it prints once listening, stopped by a signal with its exit status collected.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <stdexcept>
#include <string_view>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace llama3::server::testing {

class ServeProcess {
 public:
  // Runs `llama3 serve <args>` with LLAMA_DIR and HF_MODEL unset (random weights only).
  explicit ServeProcess(const std::vector<std::string>& args) : err_path_(err_dir_ / "stderr.txt") {
    // Everything the child needs is prepared before fork(): between fork and exec a child of a
    // threaded process may only make async-signal-safe calls (no allocation).
    std::vector<std::string> all = {LLAMA3_CLI, "serve"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> env;
    for (char** e = environ; *e; ++e) {
      const std::string_view v(*e);
      if (!v.starts_with("LLAMA_DIR=") && !v.starts_with("HF_MODEL=")) env.push_back(*e);
    }
    env.push_back(nullptr);
    const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int out[2];
    if (err < 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("cannot set up the child's output");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);  // dup2 clears close-on-exec on the copies
      ::dup2(err, STDERR_FILENO);
      ::execve(LLAMA3_CLI, argv.data(), env.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err);
    out_ = out[0];
  }

  ~ServeProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // Waits for "listening on http://HOST:PORT" and returns the port; -1 when the process printed
  // something else or ended first (its stdout so far is in stdout_text()).
  int wait_for_port(std::chrono::seconds limit = std::chrono::seconds(120)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    static const std::regex kListening(R"(listening on http://[^:]+:(\d+))");
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      if (std::regex_search(stdout_, m, kListening)) return std::stoi(m[1]);
      pollfd p = {out_, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        char buf[4096];
        const ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) return -1;  // closed: the process ended
        stdout_.append(buf, static_cast<size_t>(n));
      }
    }
    return -1;
  }

  // Sends `sig` and waits up to `limit` for the exit; returns the exit code (128 + signal when
  // killed by one), or -1 when it did not end in time.
  int stop(int sig, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    ::kill(pid_, sig);
    return wait_exit(limit);
  }

  int wait_exit(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  const std::string& stdout_text() const { return stdout_; }
  std::string stderr_text() const { return llama3::testing::read_text(err_path_); }

 private:
  llama3::testing::TempDir err_dir_{"serve"};
  std::filesystem::path err_path_;
  pid_t pid_ = -1;
  int out_ = -1;
  bool exited_ = false;
  std::string stdout_;
};

}  // namespace llama3::server::testing
