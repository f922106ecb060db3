#include "test_support.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace llama3::testing {

namespace fs = std::filesystem;

FileLock::FileLock(const fs::path& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT, 0644)) {
  if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) {
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("cannot lock " + path.string());
  }
}

FileLock::~FileLock() { ::close(fd_); }  // closing releases the lock

CommandResult run_command(const std::string& command) {
  static std::atomic<int> counter{0};
  const fs::path dir = fs::path(LLAMA3_BINARY_DIR) / "test-tmp";
  fs::create_directories(dir);
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const fs::path out = dir / ("cmd-" + tag + ".out");
  const fs::path err = dir / ("cmd-" + tag + ".err");
  const std::string full = "(" + command + ") >'" + out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(full.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = read_text(out);
  result.err = read_text(err);
  fs::remove(out);
  fs::remove(err);
  return result;
}

std::string cli() { return shell_quote(LLAMA3_CLI); }

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

TempDir::TempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  path_ = fs::path(LLAMA3_BINARY_DIR) / "test-tmp" /
          (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + path.string());
  out << text;
}

}  // namespace llama3::testing
