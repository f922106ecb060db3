#pragma once
// Names in error messages come from files: quote them, escape control bytes and cap the length,
// so every error stays one readable line whatever the file holds.
#include <string>
#include <string_view>

namespace llama3::io {

std::string quote(std::string_view text);

}  // namespace llama3::io
