#pragma once
// How much CPU other processes took: this machine is shared, and a benchmark repetition during
// which another process ran is not a measurement of us. Linux only (/proc); elsewhere the
// functions report no disturbance.
#include <cstdint>

namespace llama3 {

struct CpuSample {
  double busy_seconds = 0.0;  // all CPUs, all processes (/proc/stat)
  double self_seconds = 0.0;  // this process, all threads (/proc/self/stat)
  double wall_seconds = 0.0;  // steady clock
};

CpuSample cpu_sample();

// CPU seconds other processes used between two samples (>= 0).
double foreign_cpu_seconds(const CpuSample& before, const CpuSample& after);

// True when, between the samples, other processes used more than `fraction` of one CPU on average.
bool disturbed(const CpuSample& before, const CpuSample& after, double fraction = 0.05);

// Waits (polling every 0.25 s, at most `max_seconds`) until other processes use less than 10% of
// one CPU; returns false if the machine never became idle.
bool wait_for_idle(double max_seconds = 30.0);

}  // namespace llama3
