#pragma once
// Progress of long work (converting weights into the cache, long prefills...): a bar with rate
// and time left on a terminal, plain lines every few seconds otherwise, nothing when quiet or
// when the work ends within the first second (short work stays silent).
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/timer.h"

namespace llama3 {

class Progress {
 public:
  // `unit` names what is counted ("MB", "tokens"); output goes to `out` (stderr by default).
  Progress(std::string label, double total, std::string unit, FILE* out = stderr);
  ~Progress();  // finishes the line if anything was printed
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(double amount);  // thread-safe
  void set(double done);        // thread-safe
  void finish();

  // Process-wide switch (--quiet): no progress output at all.
  static void set_quiet(bool quiet);

 private:
  void draw(bool final);

  std::string label_, unit_;
  double total_, done_ = 0.0;
  FILE* out_;
  bool tty_;
  bool printed_ = false;
  bool finished_ = false;
  double last_draw_ = -1.0;
  Timer timer_;
};

}  // namespace llama3
