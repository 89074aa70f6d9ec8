#include "bench/loadgen/runner.h"

#include <event2/event.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "bench/loadgen/runner_impl.h"

namespace luacs::loadgen {

int64_t monotonic_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::string_view error_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kConnect:
      return "connect_failed";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kReset:
      return "connection_reset";
    case ErrorKind::kAuth:
      return "auth_failed";
    case ErrorKind::kHttp4xx:
      return "http_4xx";
    case ErrorKind::kHttp5xx:
      return "http_5xx";
    case ErrorKind::kParse:
      return "parse_error";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kCount:
      break;
  }
  return "?";
}

void RunStats::merge(const RunStats& o) {
  inform_us.merge(o.inform_us);
  session_us.merge(o.session_us);
  schedule_lag_us.merge(o.schedule_lag_us);
  started += o.started;
  completed += o.completed;
  busy += o.busy;
  unfinished += o.unfinished;
  for (size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
  requests += o.requests;
  responses += o.responses;
  connections += o.connections;
  bytes_out += o.bytes_out;
  bytes_in += o.bytes_in;
  challenges += o.challenges;
  stale_retries += o.stale_retries;
  transfer_completes += o.transfer_completes;
  late_starts += o.late_starts;
  skipped_starts += o.skipped_starts;
  for (const auto& [k, v] : o.acs_requests) acs_requests[k] += v;
}

uint64_t RunStats::error_total() const {
  uint64_t n = 0;
  for (uint64_t e : errors) n += e;
  return n;
}

namespace {
constexpr int64_t kLateUs = 10'000;  // an open-loop start this late counts as late
constexpr long kTickNs = 1'000'000;  // open loop: the arrival clock's period
}  // namespace

Runner::Impl::Impl(Shared& s, unsigned idx) : sh(s), opt(s.opt), index(idx) {
  event_config* cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!base) throw std::runtime_error("event_base_new failed");

  unsigned threads = opt.threads;
  dev_first = idx;
  dev_step = threads;
  dev_count = static_cast<size_t>((opt.devices - idx + threads - 1) / threads);
  busy.assign(dev_count, 0);

  rng.seed(opt.seed * 0x9E3779B97F4A7C15ULL + idx);
  std::vector<double> weights;
  for (const auto& e : opt.events) weights.push_back(e.weight);
  mix = std::discrete_distribution<size_t>(weights.begin(), weights.end());

  if (opt.concurrency > 0) {
    max_slots = opt.concurrency / threads + (idx < opt.concurrency % threads ? 1 : 0);
  } else {
    max_slots = std::max<size_t>(1, opt.max_inflight / threads);
    double rate = opt.rate / threads;
    interval_us = 1e6 / rate;
    gaps = std::exponential_distribution<double>(rate / 1e6);
  }
}

Runner::Impl::~Impl() {
  for (auto& s : slots) {
    if (s->bev) bufferevent_free(s->bev);
    if (s->kick) event_free(s->kick);
  }
  for (event* e : {tick, deadline_ev, hard_stop_ev, poll_ev})
    if (e) event_free(e);
  if (tick_fd >= 0) close(tick_fd);
  if (base) event_base_free(base);
}

// ---- scheduling ------------------------------------------------------------

void Runner::Impl::run() {
  poll_ev = event_new(
      base, -1, EV_PERSIST,
      [](evutil_socket_t, short, void* arg) {
        auto* r = static_cast<Impl*>(arg);
        if (r->sh.stop.load(std::memory_order_relaxed)) {
          r->draining = true;
          r->check_finish();
        }
      },
      this);
  timeval poll_tv = to_timeval(100'000);
  event_add(poll_ev, &poll_tv);

  int64_t now = monotonic_us();
  if (sh.deadline_us) {
    deadline_ev = event_new(
        base, -1, 0,
        [](evutil_socket_t, short, void* arg) {
          auto* r = static_cast<Impl*>(arg);
          r->draining = true;
          r->check_finish();
        },
        this);
    timeval tv = to_timeval(std::max<int64_t>(0, sh.deadline_us - now));
    event_add(deadline_ev, &tv);
    // Sessions still in flight long after the end are abandoned.
    hard_stop_ev = event_new(
        base, -1, 0,
        [](evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->abort_all(); }, this);
    timeval hard = to_timeval(std::max<int64_t>(0, sh.deadline_us - now) +
                              2 * std::chrono::microseconds(opt.timeout).count() + 1'000'000);
    event_add(hard_stop_ev, &hard);
  }

  if (opt.concurrency > 0) {
    for (size_t i = 0; i < max_slots; ++i) {
      auto s = std::make_unique<Slot>(this, opt);
      s->kick = event_new(base, -1, 0, on_kick, s.get());
      event_active(s->kick, EV_TIMEOUT, 0);
      slots.push_back(std::move(s));
    }
  } else {
    // The arrivals are started from a 1 ms timerfd, not from libevent
    // timers: those run on a coarse clock here (a session would start up to
    // 4 ms late at HZ=250), and EVENT_BASE_FLAG_PRECISE_TIMER was measured
    // to cost more per session than the session itself and to add long
    // stalls. Starts a tick delays show in schedule_lag.
    tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tick_fd < 0) throw std::runtime_error("timerfd_create failed");
    itimerspec period{{0, kTickNs}, {0, kTickNs}};
    timerfd_settime(tick_fd, 0, &period, nullptr);
    tick = event_new(
        base, tick_fd, EV_READ | EV_PERSIST,
        [](evutil_socket_t fd, short, void* arg) {
          uint64_t expirations;
          if (read(fd, &expirations, sizeof expirations) < 0) return;
          static_cast<Impl*>(arg)->on_tick();
        },
        this);
    event_add(tick, nullptr);
    next_arrival = static_cast<double>(sh.start_us);
  }
  if (max_slots > 0) event_base_dispatch(base);
}

bool Runner::Impl::may_start() {
  if (draining) return false;
  if (sh.stop.load(std::memory_order_relaxed) ||
      (sh.deadline_us && monotonic_us() >= sh.deadline_us)) {
    draining = true;
    return false;
  }
  if (opt.sessions) {
    if (sh.budget.fetch_sub(1) <= 0) {
      sh.budget.fetch_add(1);
      return false;  // a failing session of this thread may still give one back
    }
  }
  return true;
}

void Runner::Impl::check_finish() {
  if (inflight > 0) return;
  if (draining || (opt.sessions && sh.budget.load() <= 0)) event_base_loopbreak(base);
}

void Runner::Impl::on_tick() {
  int64_t now = monotonic_us();
  while (static_cast<int64_t>(next_arrival) <= now) {
    int64_t scheduled = static_cast<int64_t>(next_arrival);
    next_arrival += opt.poisson ? gaps(rng) : interval_us;
    if (!may_start()) {
      if (draining) break;
      continue;  // --sessions budget used up for now
    }
    Slot* s = nullptr;
    if (!idle.empty()) {
      s = idle.back();
      idle.pop_back();
    } else if (slots.size() < max_slots) {
      slots.push_back(std::make_unique<Slot>(this, opt));
      s = slots.back().get();
    } else {
      ++stats.skipped_starts;
      if (opt.sessions) sh.budget.fetch_add(1);
      continue;
    }
    int64_t lag = now - scheduled;
    stats.schedule_lag_us.record(static_cast<uint64_t>(lag));
    if (lag > kLateUs) ++stats.late_starts;
    // Latency counts from the scheduled start, so a stall of the generator
    // or the server is not hidden by starting late (coordinated omission).
    begin_session(*s, scheduled);
  }
  if (draining) event_del(tick);
  check_finish();
}

void Runner::Impl::abort_all() {
  for (auto& s : slots) {
    if (s->phase == Phase::kIdle) continue;
    ++stats.unfinished;
    close_conn(*s);
    s->phase = Phase::kIdle;
    --inflight;
  }
  draining = true;
  event_base_loopbreak(base);
}

void Runner::Impl::on_kick(evutil_socket_t, short, void* arg) {
  Slot& s = *static_cast<Slot*>(arg);
  Impl& r = *s.r;
  if (!r.may_start()) {
    r.check_finish();
    return;
  }
  r.begin_session(s, monotonic_us());
}

uint64_t Runner::Impl::pick_device(size_t* local) {
  for (size_t k = 0; k < dev_count; ++k) {
    size_t i = cursor;
    cursor = cursor + 1 == dev_count ? 0 : cursor + 1;
    if (!busy[i]) {
      *local = i;
      return dev_first + i * dev_step;
    }
  }
  // Fewer devices than sessions in flight: share one.
  size_t i = cursor;
  cursor = cursor + 1 == dev_count ? 0 : cursor + 1;
  *local = i;
  return dev_first + i * dev_step;
}

// ---- Runner ----------------------------------------------------------------

Runner::Runner(Shared& shared, unsigned index) : impl_(std::make_unique<Impl>(shared, index)) {}
Runner::~Runner() = default;
void Runner::run() {
  impl_->run();
}
const RunStats& Runner::stats() const {
  return impl_->stats;
}
int64_t Runner::last_completion_us() const {
  return impl_->last_completion;
}

}  // namespace luacs::loadgen
