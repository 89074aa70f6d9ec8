// --cr-listen on one load thread: its devices take connection requests,
// start a session with 6 CONNECTION REQUEST once woken, and (--wake-rate)
// its share of the wakes is asked for through luacs' API.
#include <algorithm>
#include <string>

#include "bench/loadgen/runner_impl.h"
#include "core/cwmp/device_id.h"

namespace luacs::loadgen {
namespace {
// How many devices the trigger looks at for an idle one before it counts
// the wake as skipped (a fleet busier than the wake rate).
constexpr size_t kWakeScan = 256;
constexpr int64_t kCrTickUs = 1000;
constexpr int64_t kStunTickUs = 10'000;
constexpr uint64_t kStunBurst = 1000;
}  // namespace

void Runner::Impl::setup_cr() {
  const CrOptions& cr = opt.cr;
  known.assign(dev_count, cr.devices_known ? 1 : 0);
  wake_pending.assign(dev_count, 0);
  api_pending.assign(dev_count, 0);
  cr_at.assign(dev_count, 0);
  api_at.assign(dev_count, 0);
  wake_from.assign(dev_count, 0);
  auto owns_fn = [this](uint64_t d) { return owns(d); };
  auto wake_fn = [this](uint64_t d, bool udp) { on_cr(d, udp); };
  auto port = [&](uint16_t base_port) {
    return base_port ? static_cast<uint16_t>(base_port + index) : uint16_t{0};
  };
  if (cr.http()) {
    http_cr = std::make_unique<CrHttpListener>(base, cr, port(cr.port), owns_fn, wake_fn, stats.cr);
    http_base = "http://127.0.0.1:" + std::to_string(http_cr->port()) + "/";
  }
  if (cr.udp()) {
    udp_cr = std::make_unique<CrUdpListener>(base, cr, cr.udp_port, dev_first, dev_step, dev_count,
                                             wake_fn, stats.cr);
  }
  if (cr.wake_rate > 0) {
    unsigned share = std::max(1u, cr.wake_max_inflight / opt.threads);
    waker = std::make_unique<ApiWaker>(
        base, cr, cr.wake_timeout + std::chrono::seconds(5), share,
        [this](size_t local, const ApiWaker::Answer& a) { on_api_answer(local, a); });
  }
}

void Runner::Impl::start_cr_timers() {
  if (waker) {
    wake_ev = event_new(
        base, -1, EV_PERSIST,
        [](evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->on_wake_tick(); }, this);
    timeval tv = to_timeval(kCrTickUs);
    event_add(wake_ev, &tv);
  }
  if (udp_cr && !opt.cr.stun.empty()) {
    stun_ev = event_new(
        base, -1, EV_PERSIST,
        [](evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->on_stun_tick(); }, this);
    timeval tv = to_timeval(kStunTickUs);
    event_add(stun_ev, &tv);
  }
}

CrValues Runner::Impl::cr_values(Slot& s) {
  s.cr_user = cr_username(opt.cr, s.device);
  s.cr_url = http_base;
  s.cr_url += std::to_string(s.device);
  s.cr_udp.clear();
  if (udp_cr) s.cr_udp = "127.0.0.1:" + std::to_string(udp_cr->port(s.local));
  return {s.serial, now_string(), s.cr_url, s.cr_udp, s.cr_user};
}

// A request verified at the device: a session now, or after the one it is in.
void Runner::Impl::on_cr(uint64_t device, bool) {
  size_t local = local_of(device);
  int64_t now = monotonic_us();
  CrStats& c = stats.cr;
  ++c.received;
  if (wake_from[local] && cr_at[local] < wake_from[local])
    c.api_to_cr_us.record(static_cast<uint64_t>(now - wake_from[local]));
  // After the end only the wakes this run still waits for are played.
  if (draining && !api_pending[local]) {
    ++c.ignored;
    return;
  }
  if (wake_pending[local]) {
    ++c.merged;
    return;
  }
  cr_at[local] = now;
  if (busy[local]) {
    ++c.deferred;
    wake_pending[local] = 1;
    return;
  }
  start_woken(local, now);
}

void Runner::Impl::start_woken(size_t local, int64_t t_cr) {
  Slot* s = nullptr;
  if (!wake_idle.empty()) {
    s = wake_idle.back();
    wake_idle.pop_back();
  } else {
    wake_slots.push_back(std::make_unique<Slot>(this, opt));
    s = wake_slots.back().get();
  }
  ++stats.cr.woken_started;
  s->t_cr = t_cr;
  s->tail = draining;
  begin_session(*s, monotonic_us(), local, kWokenEntry);
}

// The InformResponse of a woken session: the end of the latencies.
void Runner::Impl::woken_informed(const Slot& s) {
  int64_t now = monotonic_us();
  stats.cr.cr_to_inform_us.record(static_cast<uint64_t>(now - s.t_cr));
  int64_t& sent = wake_from[s.local];
  if (sent) {
    stats.cr.wake_to_inform_us.record(static_cast<uint64_t>(now - sent));
    sent = 0;
  }
}

// A session of the device ended: the wake that waited for it, if any.
void Runner::Impl::after_woken(Slot& s) {
  size_t local = s.local;
  if (!wake_pending[local] || busy[local] || (draining && !api_pending[local])) return;
  wake_pending[local] = 0;
  start_woken(local, cr_at[local]);
}

std::optional<size_t> Runner::Impl::pick_wake() {
  for (size_t k = 0; k < std::min(kWakeScan, dev_count); ++k) {
    size_t i = wake_cursor;
    wake_cursor = wake_cursor + 1 == dev_count ? 0 : wake_cursor + 1;
    if (known[i] && !busy[i] && !wake_pending[i] && !api_pending[i]) return i;
  }
  return std::nullopt;
}

// Open loop, even spacing: the wakes due since the start, each to an idle
// device the ACS knows.
void Runner::Impl::on_wake_tick() {
  if (draining || sh.stop.load(std::memory_order_relaxed)) {
    event_del(wake_ev);
    return check_finish();
  }
  double rate = opt.cr.wake_rate / opt.threads;
  auto due = static_cast<uint64_t>(static_cast<double>(monotonic_us() - sh.start_us) * rate / 1e6);
  CrStats& c = stats.cr;
  for (; wakes_issued < due; ++wakes_issued) {
    auto local = pick_wake();
    if (!local) {
      ++c.skipped_no_device;
      continue;
    }
    uint64_t device = dev_first + *local * dev_step;
    soap::DeviceIdStruct id = sh.fleet.kit(device).model.device_id();
    id.serial_number = serial_for(sh.fleet.kit(device).model, device);
    // Marked before the call: a call that fails at once answers inside it.
    int64_t now = monotonic_us();
    api_pending[*local] = 1;
    api_at[*local] = now;
    wake_from[*local] = now;
    if (!waker->wake(*local, cwmp::device_id(id))) {
      api_pending[*local] = 0;
      api_at[*local] = wake_from[*local] = 0;
      ++c.skipped_inflight;
      continue;
    }
    ++c.wakes_sent;
  }
}

void Runner::Impl::on_api_answer(size_t local, const ApiWaker::Answer& a) {
  CrStats& c = stats.cr;
  api_pending[local] = 0;
  c.api_us.record(static_cast<uint64_t>(monotonic_us() - api_at[local]));
  api_at[local] = 0;
  // Not woken: a connection request that comes later is not this call's.
  if (a.status != 200) wake_from[local] = 0;
  std::string key = a.status ? std::to_string(a.status) + " " + a.outcome : "error " + a.outcome;
  ++c.api[key];
  if (!a.transport.empty()) ++c.transports[a.transport];
  check_finish();
}

// Binding keep-alives: every device of the share once per --stun-interval,
// spread evenly over it.
void Runner::Impl::on_stun_tick() {
  if (draining || sh.stop.load(std::memory_order_relaxed)) {
    event_del(stun_ev);
    return;
  }
  double per_us = static_cast<double>(dev_count) / (opt.cr.stun_interval_s * 1e6);
  // The first round all at once, so the bindings are there from the start.
  auto due =
      static_cast<uint64_t>(static_cast<double>(monotonic_us() - sh.start_us) * per_us) + dev_count;
  // At most kStunBurst a tick (the first round takes a moment).
  due = std::min(due, stun_issued + kStunBurst);
  for (; stun_issued < due; ++stun_issued) {
    udp_cr->send_stun(stun_cursor);
    stun_cursor = stun_cursor + 1 == dev_count ? 0 : stun_cursor + 1;
  }
}

}  // namespace luacs::loadgen
