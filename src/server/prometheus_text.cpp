#include "server/prometheus_text.h"

#include <cmath>
#include <cstdlib>
#include <limits>

namespace llama3::server {
namespace {

std::optional<double> parse_value(std::string_view v) {
  if (v == "+Inf" || v == "Inf") return std::numeric_limits<double>::infinity();
  if (v == "-Inf") return -std::numeric_limits<double>::infinity();
  if (v == "NaN") return std::numeric_limits<double>::quiet_NaN();
  const std::string s(v);  // strtod needs a terminated string
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) return std::nullopt;
  return d;
}

}  // namespace

PrometheusSamples parse_prometheus_text(std::string_view text) {
  PrometheusSamples out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    // The series ends at the first space outside the braces (label values may hold spaces).
    size_t series_end = 0;
    bool in_braces = false, in_quotes = false;
    for (; series_end < line.size(); ++series_end) {
      const char c = line[series_end];
      if (in_quotes) {
        if (c == '\\') ++series_end;
        else if (c == '"') in_quotes = false;
      } else if (c == '"' && in_braces) {
        in_quotes = true;
      } else if (c == '{') {
        in_braces = true;
      } else if (c == '}') {
        in_braces = false;
      } else if (c == ' ' && !in_braces) {
        break;
      }
    }
    if (series_end >= line.size()) continue;
    std::string_view rest = line.substr(series_end + 1);
    const size_t space = rest.find(' ');  // a timestamp may follow the value
    if (space != std::string_view::npos) rest = rest.substr(0, space);
    if (const std::optional<double> v = parse_value(rest)) out[std::string(line.substr(0, series_end))] = *v;
  }
  return out;
}

std::optional<double> sample(const PrometheusSamples& samples, const std::string& series) {
  const auto it = samples.find(series);
  if (it == samples.end()) return std::nullopt;
  return it->second;
}

}  // namespace llama3::server
