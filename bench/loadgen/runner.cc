#include "bench/loadgen/runner.h"

#include <event2/event.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "bench/loadgen/runner_impl.h"
#include "core/sim/cpe.h"

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
    case ErrorKind::kTls:
      return "tls_handshake";
    case ErrorKind::kCount:
      break;
  }
  return "?";
}

bool overload_error(ErrorKind k) {
  return k == ErrorKind::kConnect || k == ErrorKind::kTimeout || k == ErrorKind::kReset;
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
  retries += o.retries;
  devices_done += o.devices_done;
  devices_not_done += o.devices_not_done;
  if (o.first_start_us && (!first_start_us || o.first_start_us < first_start_us))
    first_start_us = o.first_start_us;
  last_device_us = std::max(last_device_us, o.last_device_us);
  for (const auto& serial : o.not_done)
    if (not_done.size() < kNotDoneListed) not_done.push_back(serial);
  cr.merge(o.cr);
  tls_handshakes += o.tls_handshakes;
  tls_resumed += o.tls_resumed;
  tls_handshake_failures += o.tls_handshake_failures;
  tls_client_certs += o.tls_client_certs;
  tls_handshake_us.merge(o.tls_handshake_us);
  for (const auto& [k, v] : o.tls_server_keys) tls_server_keys[k] += v;
}

uint64_t RunStats::error_total() const {
  uint64_t n = 0;
  for (uint64_t e : errors) n += e;
  return n;
}

uint64_t RunStats::overload_errors() const {
  uint64_t n = 0;
  for (size_t i = 0; i < errors.size(); ++i)
    if (overload_error(static_cast<ErrorKind>(i))) n += errors[i];
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
  // Every connection's event has the same timeout: a common timeout keeps
  // them in a queue rather than the heap, and re-arming one is cheap.
  io_timeout_tv = to_timeval(std::chrono::microseconds(opt.timeout).count());
  io_timeout = event_base_init_common_timeout(base, &io_timeout_tv);
  if (!io_timeout) io_timeout = &io_timeout_tv;

  unsigned threads = opt.threads;
  dev_first = idx;
  dev_step = threads;
  dev_count = static_cast<size_t>((opt.devices - idx + threads - 1) / threads);
  busy.assign(dev_count, 0);
  if (opt.each_device_once) {
    dev_state.assign(dev_count, DevState::kNew);
    dev_failures.assign(dev_count, 0);
  }

  rng.seed(opt.seed * 0x9E3779B97F4A7C15ULL + idx);
  std::vector<double> weights;
  for (const auto& e : opt.events) weights.push_back(e.weight);
  mix = std::discrete_distribution<size_t>(weights.begin(), weights.end());

  if (opt.cr.on()) setup_cr();
  // With client certificates a session is the device's: one that another
  // device's certificate made would resume that identity.
  if (opt.tls.resume && !opt.tls.cert_dir.empty()) device_sessions.assign(dev_count, nullptr);
  if (opt.concurrency > 0) {
    max_slots = opt.concurrency / threads + (idx < opt.concurrency % threads ? 1 : 0);
  } else if (opt.rate > 0) {
    max_slots = std::max<size_t>(1, opt.max_inflight / threads);
    double rate = opt.rate / threads;
    interval_us = 1e6 / rate;
    gaps = std::exponential_distribution<double>(rate / 1e6);
  }
}

Runner::Impl::~Impl() {
  for (auto* v : {&slots, &wake_slots}) {
    for (auto& s : *v) {
      if (s->bev) bufferevent_free(s->bev);
      if (s->io) event_free(s->io);
      if (s->fd >= 0) close(s->fd);
      if (s->kick) event_free(s->kick);
      if (s->tls_session) SSL_SESSION_free(s->tls_session);
    }
  }
  for (SSL_SESSION* session : device_sessions)
    if (session) SSL_SESSION_free(session);
  // What holds events goes before the event base.
  waker.reset();
  http_cr.reset();
  udp_cr.reset();
  for (event* e : {tick, deadline_ev, hard_stop_ev, poll_ev, wake_ev, stun_ev})
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
  } else if (opt.rate > 0) {
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
  if (opt.cr.on()) start_cr_timers();
  if (max_slots > 0 || opt.cr.on()) event_base_dispatch(base);
  if (opt.each_device_once) count_not_done();
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
  if (inflight > 0 || (waker && waker->inflight() > 0)) return;
  if (draining || (opt.sessions && sh.budget.load() <= 0) ||
      (opt.each_device_once && settled == dev_count))
    event_base_loopbreak(base);
}

Slot* Runner::Impl::free_slot() {
  if (!idle.empty()) {
    Slot* s = idle.back();
    idle.pop_back();
    return s;
  }
  if (slots.size() < max_slots) {
    slots.push_back(std::make_unique<Slot>(this, opt));
    return slots.back().get();
  }
  return nullptr;
}

void Runner::Impl::on_tick() {
  int64_t now = monotonic_us();
  if (opt.each_device_once) start_due_retries(now);
  while (static_cast<int64_t>(next_arrival) <= now) {
    // Each device once: the schedule draws new devices only; once all have
    // started, what is left is their retries.
    if (opt.each_device_once && next_new == dev_count) break;
    int64_t scheduled = static_cast<int64_t>(next_arrival);
    next_arrival += opt.poisson ? gaps(rng) : interval_us;
    if (!may_start()) {
      if (draining) break;
      continue;  // --sessions budget used up for now
    }
    Slot* s = free_slot();
    if (!s) {
      ++stats.skipped_starts;  // each device once: the device waits for the next arrival
      if (opt.sessions) sh.budget.fetch_add(1);
      continue;
    }
    int64_t lag = now - scheduled;
    stats.schedule_lag_us.record(static_cast<uint64_t>(lag));
    if (lag > kLateUs) ++stats.late_starts;
    // Latency counts from the scheduled start, so a stall of the generator
    // or the server is not hidden by starting late (coordinated omission).
    begin_session(*s, scheduled, opt.each_device_once ? next_new++ : pick_device(), -1);
  }
  if (draining) event_del(tick);
  check_finish();
}

void Runner::Impl::abort_all() {
  for (auto* v : {&slots, &wake_slots}) {
    for (auto& s : *v) {
      if (s->phase == Phase::kIdle) continue;
      ++stats.unfinished;
      close_conn(*s);
      s->phase = Phase::kIdle;
      --inflight;
    }
  }
  if (waker) waker->close_all();
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
  if (r.opt.each_device_once) return r.kick_once(s);
  r.begin_session(s, monotonic_us(), r.pick_device(), -1);
}

size_t Runner::Impl::pick_device() {
  for (size_t k = 0; k < dev_count; ++k) {
    size_t i = cursor;
    cursor = cursor + 1 == dev_count ? 0 : cursor + 1;
    if (!busy[i]) return i;
  }
  // Fewer devices than sessions in flight: share one.
  size_t i = cursor;
  cursor = cursor + 1 == dev_count ? 0 : cursor + 1;
  return i;
}

// ---- each device once --------------------------------------------------------

// Closed loop: a retry that is due, else the next device that has not
// started, else sleep until the earliest retry is due. A retry pushed while
// this slot sleeps is never earlier than its own slot's wake-up: that slot
// comes here as its session ends.
void Runner::Impl::kick_once(Slot& s) {
  int64_t now = monotonic_us();
  if (!retry_queue.empty() && retry_queue.top().due <= now) {
    Retry t = retry_queue.top();
    retry_queue.pop();
    ++stats.retries;
    return begin_session(s, now, t.local, t.entry);
  }
  if (next_new < dev_count) return begin_session(s, now, next_new++, -1);
  if (!retry_queue.empty()) {
    timeval tv = to_timeval(retry_queue.top().due - now);
    event_add(s.kick, &tv);
    return;
  }
  check_finish();
}

// Open loop: retries are starts on top of the arrival schedule, at their
// due time (the session's latency counts from it). With --max-inflight
// reached they wait for a free slot.
void Runner::Impl::start_due_retries(int64_t now) {
  while (!retry_queue.empty() && retry_queue.top().due <= now) {
    if (!may_start()) return;
    Slot* s = free_slot();
    if (!s) return;
    Retry t = retry_queue.top();
    retry_queue.pop();
    int64_t lag = now - t.due;
    stats.schedule_lag_us.record(static_cast<uint64_t>(lag));
    if (lag > kLateUs) ++stats.late_starts;
    ++stats.retries;
    begin_session(*s, t.due, t.local, t.entry);
  }
}

// A session of a device ended: done, or its next try per --busy-retry. A
// real CPE retries any failed session (TR-069 3.2.1.1), with the same events.
void Runner::Impl::settle_once(const Slot& s, Outcome outcome, int64_t now) {
  if (outcome == Outcome::kCompleted) {
    dev_state[s.local] = DevState::kDone;
    ++settled;
    ++stats.devices_done;
    stats.last_device_us = now;
    return;
  }
  if (opt.busy_retry == BusyRetry::kNone) {
    dev_state[s.local] = DevState::kLost;
    ++settled;
    return;
  }
  uint8_t& n = dev_failures[s.local];
  if (n < 255) ++n;
  double u = std::uniform_real_distribution<double>(0, 1)(rng);
  dev_state[s.local] = DevState::kWaiting;
  retry_queue.push({now + retry_wait(opt, n, u).count(), s.local, s.entry});
}

void Runner::Impl::count_not_done() {
  stats.devices_not_done = dev_count - stats.devices_done;
  for (size_t i = 0; i < dev_count && stats.not_done.size() < RunStats::kNotDoneListed; ++i) {
    if (dev_state[i] == DevState::kDone) continue;
    uint64_t device = dev_first + i * dev_step;
    stats.not_done.push_back(serial_for(sh.fleet.kit(device).model, device));
  }
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
uint16_t Runner::cr_http_port() const {
  return impl_->http_cr ? impl_->http_cr->port() : 0;
}
uint16_t Runner::cr_udp_port() const {
  return impl_->udp_cr && impl_->dev_count ? impl_->udp_cr->port(0) : 0;
}

}  // namespace luacs::loadgen
