#include "server/api_error.h"

namespace llama3::server {

nlohmann::json ApiError::to_json() const {
  auto or_null = [](const std::optional<std::string>& s) -> nlohmann::json {
    return s ? nlohmann::json(*s) : nlohmann::json(nullptr);
  };
  return {{"error", {{"message", what()}, {"type", type_}, {"param", or_null(param_)}, {"code", or_null(code_)}}}};
}

ApiError invalid_param(const std::string& param, const std::string& message, std::optional<std::string> code) {
  return ApiError(400, "invalid_request_error", message, param, std::move(code));
}

}  // namespace llama3::server
