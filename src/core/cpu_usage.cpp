#include "core/cpu_usage.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace llama3 {

namespace {

double ticks_per_second() {
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return ticks > 0 ? ticks : 100.0;
}

double read_busy_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || cpu != "cpu") return 0.0;
  return static_cast<double>(user + nice + system + irq + softirq + steal) / ticks_per_second();
}

double read_self_seconds() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return 0.0;
  // Fields after the command name (which may hold spaces) start after the last ')'.
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / ticks_per_second();
}

}  // namespace

CpuSample cpu_sample() {
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  return {read_busy_seconds(), read_self_seconds(), std::chrono::duration<double>(now).count()};
}

double foreign_cpu_seconds(const CpuSample& before, const CpuSample& after) {
  const double foreign = (after.busy_seconds - before.busy_seconds) - (after.self_seconds - before.self_seconds);
  return foreign > 0 ? foreign : 0.0;
}

bool disturbed(const CpuSample& before, const CpuSample& after, double fraction) {
  const double wall = after.wall_seconds - before.wall_seconds;
  // The counters tick at 100 Hz: allow two ticks of slack for short intervals.
  return foreign_cpu_seconds(before, after) > fraction * wall + 2.0 / ticks_per_second();
}

bool wait_for_idle(double max_seconds) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const CpuSample a = cpu_sample();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const CpuSample b = cpu_sample();
    if (!disturbed(a, b, 0.10)) return true;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > max_seconds) return false;
  }
}

}  // namespace llama3
