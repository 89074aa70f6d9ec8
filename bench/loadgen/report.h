// The figures of a run: the human summary and the JSON document.
#pragma once

#include <cstdint>
#include <string>

#include "bench/loadgen/options.h"
#include "bench/loadgen/runner.h"

namespace luacs::loadgen {

struct Report {
  const Options* opt = nullptr;
  RunStats stats;
  double elapsed_s = 0;      // start -> last completed session (or the end)
  double loadgen_cpu_s = 0;  // user + system of this process
  double server_cpu_s = -1;  // of --server-pid over the run, -1 unknown
  unsigned threads = 1;
  bool gave_up = false;  // --sessions: stopped once the error budget was spent

  double sessions_per_s() const;
  double wakes_per_s() const;  // --wake-rate: API calls per second of --duration
  // Non-503 errors (and abandoned sessions) per session attempted.
  double error_rate() const;
  // --each-device-once: first start -> last device done, -1 when some
  // device is not done.
  double drain_s() const;
  // --wake-rate: API calls that did not answer 200 (the session started).
  uint64_t failed_wakes() const;
  bool passed() const;  // what the exit status says
};

std::string human_summary(const Report& r);
std::string json_report(const Report& r);

// User + system CPU seconds of a process from /proc/<pid>/stat, -1 if unknown.
double process_cpu_seconds(int pid);

}  // namespace luacs::loadgen
