#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include <fmt/core.h>

namespace llama3 {

namespace {

std::atomic<bool> g_quiet{false};
std::mutex g_mutex;  // one progress line at a time, across threads

constexpr double kSilentSeconds = 1.0;  // work shorter than this prints nothing
constexpr double kTtyInterval = 0.1;
constexpr double kPlainInterval = 5.0;

std::string format_seconds(double s) {
  if (s < 0 || s > 1e7) return "?";
  const int total = static_cast<int>(s + 0.5);
  return total >= 60 ? fmt::format("{}m{:02}s", total / 60, total % 60) : fmt::format("{}s", total);
}

}  // namespace

void Progress::set_quiet(bool quiet) { g_quiet = quiet; }

Progress::Progress(std::string label, double total, std::string unit, FILE* out)
    : label_(std::move(label)), unit_(std::move(unit)), total_(std::max(total, 1e-9)), out_(out),
      tty_(out != nullptr && isatty(fileno(out))) {}

Progress::~Progress() { finish(); }

void Progress::advance(double amount) {
  const std::lock_guard lock(g_mutex);
  done_ += amount;
  draw(false);
}

void Progress::set(double done) {
  const std::lock_guard lock(g_mutex);
  done_ = done;
  draw(false);
}

void Progress::finish() {
  const std::lock_guard lock(g_mutex);
  if (finished_) return;
  finished_ = true;
  if (printed_) draw(true);
}

void Progress::draw(bool final) {
  if (g_quiet || out_ == nullptr) return;
  const double t = timer_.seconds();
  if (!final && t < kSilentSeconds) return;
  if (!final && last_draw_ >= 0 && t - last_draw_ < (tty_ ? kTtyInterval : kPlainInterval)) return;
  last_draw_ = t;
  const double frac = std::clamp(done_ / total_, 0.0, 1.0);
  const double rate = t > 0 ? done_ / t : 0.0;
  const double left = rate > 0 ? (total_ - done_) / rate : -1.0;
  const std::string figures = fmt::format("{:.0f}/{:.0f} {} {:.1f} {}/s, {} {}", done_, total_, unit_, rate, unit_,
                                          final ? format_seconds(t) : format_seconds(left), final ? "total" : "left");
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    fmt::print(out_, "\r{} [{}{}] {:3.0f}% {}\x1b[K{}", label_, std::string(static_cast<size_t>(filled), '#'),
               std::string(static_cast<size_t>(kWidth - filled), '.'), 100 * frac, figures, final ? "\n" : "");
  } else {
    fmt::print(out_, "{}: {:3.0f}% {}\n", label_, 100 * frac, figures);
  }
  std::fflush(out_);
  printed_ = true;
}

}  // namespace llama3
