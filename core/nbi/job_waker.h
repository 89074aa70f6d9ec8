// Internal to core/nbi: the connection requests of a bulk job made with
// "connection_request": true (routes_jobs.cc, sql/007).
//
// A JobWaker pages through the job's pending tasks in device id order
// (tasks_job_pending_device) and wakes each device through
// Services::wake, at most `rate` a second and at most kMaxInFlight at once,
// so a 50,000-device roll-out starts now without a boot storm of our own
// making. It runs beside the job's queuing: when it catches up with it, it
// waits and looks again; it ends when the job is fully queued and no
// pending task is left past its position. Its position, count and outcomes
// are written to the job's row with every page, so a restart wakes on from
// the last device woken. It lives on the API's loop; Api keeps it by job id.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "core/loop/loop.h"
#include "core/nbi/api.h"

namespace luacs::nbi {

// What a job's row says of its waking.
struct WakeProgress {
  int rate = 0;                             // devices a second
  std::string through;                      // the last device woken
  int64_t woken = 0;                        // connection requests sent
  std::map<std::string, int64_t> outcomes;  // by WakeAnswer::outcome
};

class JobWaker : public std::enable_shared_from_this<JobWaker> {
 public:
  static constexpr int kPage = 1000;         // device ids read at once
  static constexpr int kMaxInFlight = 1000;  // wakes awaiting their answer
  static constexpr int kMaxRate = 10'000;    // what POST /jobs accepts

  // Starts (or resumes) waking job `job` unless it is already being woken.
  static void start(Api& api, int64_t job, WakeProgress progress);
  // The job was cancelled: its waker (if any) stops at once.
  static void cancel(Api& api, int64_t job);

  JobWaker(Api& api, int64_t job, WakeProgress progress);

 private:
  static void on_tick(evutil_socket_t, short, void* self);
  void tick();
  void fetch();
  void fetched(const PgReply& r);
  void dispatch(std::string device);
  void answered(const WakeAnswer& a);
  void finish(const char* state);

  Api& api_;
  int64_t job_;
  WakeProgress progress_;
  loop::Event timer_;
  std::chrono::steady_clock::time_point last_tick_;
  double tokens_ = 0;
  std::deque<std::string> ready_;  // fetched, not yet woken
  std::string fetched_through_;    // the keyset position of the next page
  int in_flight_ = 0;
  bool fetching_ = false;
  bool exhausted_ = false;  // the job is fully queued and nothing is left to fetch
  std::chrono::steady_clock::time_point next_fetch_{};
};

}  // namespace luacs::nbi
