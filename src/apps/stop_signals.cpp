#include "apps/stop_signals.h"

namespace llama3::apps {

namespace {

std::atomic<int> g_received{0};  // lock-free: safe to store from a signal handler

void on_signal(int signal) { g_received.store(signal); }

}  // namespace

StopSignals::StopSignals() {
  g_received.store(0);
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND;  // the next one takes the default action
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &previous_int_);
  ::sigaction(SIGTERM, &sa, &previous_term_);
}

StopSignals::~StopSignals() {
  ::sigaction(SIGINT, &previous_int_, nullptr);
  ::sigaction(SIGTERM, &previous_term_, nullptr);
}

const std::atomic<int>& StopSignals::received() const { return g_received; }

}  // namespace llama3::apps
