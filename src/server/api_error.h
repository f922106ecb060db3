#pragma once
// An error as the OpenAI API reports it: an HTTP status plus the fields of
// {"error": {"message", "type", "param", "code"}}. Everything the server rejects becomes one of
// these, so every failure reaches the client in the shape its SDK already parses.
#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>

namespace llama3::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, const std::string& message, std::optional<std::string> param = {},
           std::optional<std::string> code = {})
      : std::runtime_error(message),
        status_(status),
        type_(std::move(type)),
        param_(std::move(param)),
        code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::optional<std::string>& param() const { return param_; }
  const std::optional<std::string>& code() const { return code_; }

  // {"error": {...}} with null for an absent param or code, as OpenAI sends them.
  nlohmann::json to_json() const;

 private:
  int status_;
  std::string type_;
  std::optional<std::string> param_;
  std::optional<std::string> code_;
};

// 400 invalid_request_error naming the offending parameter.
ApiError invalid_param(const std::string& param, const std::string& message,
                       std::optional<std::string> code = {});

}  // namespace llama3::server
