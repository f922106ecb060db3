#pragma once
// The one exception type of the engine. Everything that comes from user input (files, flags,
// JSON, token ids) is checked at the boundary and reported with this, with a message that names
// the problem; `main` catches it, prints one line to stderr and exits non-zero.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace llama3 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws llama3::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Checks a condition that user input controls.
template <typename... Args>
void check(bool condition, fmt::format_string<Args...> format, Args&&... args) {
  if (!condition) fail(format, std::forward<Args>(args)...);
}

}  // namespace llama3
