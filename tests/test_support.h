#pragma once
// Helpers shared by the test executables: running the CLI or a script, temporary folders.
#include <cstdint>
#include <filesystem>
#include <string>

namespace llama3::testing {

// Built with AddressSanitizer (make test-sanitize): the model runs ~10x slower and freed memory
// sits in ASan's quarantine, so load sizes are scaled down and RSS flatness is not judged.
inline constexpr bool kSanitized = LLAMA3_SANITIZED != 0;

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `command` through /bin/sh, capturing stdout and stderr separately.
CommandResult run_command(const std::string& command);

// Path to the built `llama3` binary, quoted for the shell.
std::string cli();

// `s` as one word for /bin/sh (single quotes; a quote inside as '\'').
std::string shell_quote(const std::string& s);

// FNV-1a: a stable hash (std::hash is not promised to be stable between builds), for naming
// fixtures generated once per build tree after their arguments and scripts.
inline uint64_t fnv1a(const std::string& text, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// An exclusive flock(2) on a file, held for the object's life: concurrent test processes (ctest
// -j) wait while one generates a shared fixture. Throws std::runtime_error when it cannot lock.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// A fresh empty folder under the build tree, removed with the object.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::string read_text(const std::filesystem::path& path);
void write_text(const std::filesystem::path& path, const std::string& text);

}  // namespace llama3::testing
