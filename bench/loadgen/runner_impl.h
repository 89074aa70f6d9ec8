// Internal to the load generator: one thread's event loop (Runner::Impl),
// its slots and the state of the session on each. runner.cc schedules
// sessions; session_flow.cc plays them.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bench/loadgen/http_client.h"
#include "bench/loadgen/runner.h"
#include "core/sim/cpe.h"
#include "core/soap/reader.h"

namespace luacs::loadgen {

enum class Phase : uint8_t {
  kIdle,
  kInform,            // Inform sent, InformResponse due
  kTransferComplete,  // TransferComplete sent, its response due
  kCpe,               // empty POST or an answer to an ACS request sent: 204 or a request due
};
enum class Outcome : uint8_t { kCompleted, kBusy, kFailed };

// The `entry` of a session that answers a connection request.
inline constexpr int kWokenEntry = -2;

// What a device has to report in its next session.
struct PendingActions {
  bool reboot = false;
  std::string reboot_key;
  bool download = false;
  std::string download_key;
};

// The bytes read off a slot's connection and not yet consumed: one buffer
// the slot keeps from connection to connection (no allocation per read),
// unless a large response made it large.
class InBuffer {
 public:
  std::string_view view() const { return {buf_.get(), len_}; }
  // Room for at least `n` more bytes at end(); room() says how much.
  char* reserve(size_t n);
  char* end() { return buf_.get() + len_; }
  size_t room() const { return cap_ - len_; }
  void commit(size_t n) { len_ += n; }
  void consume(size_t n);  // drops the first n bytes
  void clear();            // at a connection's end

 private:
  std::unique_ptr<char[]> buf_;
  size_t len_ = 0, cap_ = 0;
};

inline timeval to_timeval(int64_t us) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(us / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  return tv;
}

// One simulated CPE "slot": a connection (when open) and the session on it.
// Plain TCP is a non-blocking socket with one edge-triggered event, set up
// at the connect and deleted at the close; --tls is a bufferevent.
struct Slot {
  Runner::Impl* r = nullptr;
  int fd = -1;                 // plain TCP
  event* io = nullptr;         // fd's event (allocated once, assigned per connection)
  bufferevent* bev = nullptr;  // --tls
  uint32_t conn_gen = 0;       // bumped by every close: a callback sees its connection go
  uint32_t sends = 0;          // requests sent on this slot so far
  size_t out_sent = 0;         // bytes of `out` the socket took
  InBuffer in;                 // what came in and is not consumed yet
  event* kick = nullptr;       // starts the next session (closed loop)
  bool connected = false;
  bool inherited = false;  // the request rides on a connection an earlier session used
  bool stale_retried = false;
  bool awaiting = false;  // a response is due
  size_t resp_bytes = 0;  // bytes of the due response seen so far
  DigestClient digest;
  uint32_t sent_nc = 0;  // nonce-count of the last request's Authorization, 0 = none

  Phase phase = Phase::kIdle;
  uint64_t device = 0;
  size_t local = 0;  // device index within this thread's share
  int entry = -1;    // the event-mix entry played (-1: pending reports), again on a retry
  const ModelKit* kit = nullptr;
  std::string serial;
  CpeSession cpe;
  bool send_tc = false;
  bool reports_pending = false;
  std::string tc_key;
  std::string cookie;
  std::string body;  // the body of the request in flight (re-sent after a 401)
  std::string out;   // request bytes
  int64_t t_start = 0, t_inform = 0;
  // --cr-listen.
  bool woken = false;  // the session answers a connection request
  int64_t t_cr = 0;    // when the device took that request
  // Woken after the run's end for a wake still in flight: played, so the
  // API call ends in a session, but not counted among the run's sessions.
  bool tail = false;
  std::string cr_url, cr_user, cr_udp;
  // --tls: the connect's start, and (--tls-resume) the session the server
  // issued last on this slot's connections (owned).
  int64_t t_connect = 0;
  SSL_SESSION* tls_session = nullptr;

  Slot(Runner::Impl* runner, const Options& opt) : r(runner), digest(opt.username, opt.password) {}
  bool open() const { return fd >= 0 || bev != nullptr; }
};

struct Runner::Impl {
  Impl(Shared& s, unsigned idx);
  ~Impl();

  // Scheduling.
  void run();
  bool may_start();
  void check_finish();
  void on_tick();
  void abort_all();

  // --each-device-once.
  void kick_once(Slot& s);
  void start_due_retries(int64_t now);
  void settle_once(const Slot& s, Outcome outcome, int64_t now);
  void count_not_done();
  Slot* free_slot();

  // A session of device `local` of this thread's share; `entry` is the
  // event-mix entry to play, -1 to draw one.
  void begin_session(Slot& s, int64_t t_start, size_t local, int entry);
  void send_request(Slot& s);
  bool open_connection(Slot& s);
  void close_conn(Slot& s);

  // Plain TCP (tcp_flow.cc).
  bool open_tcp_connection(Slot& s);
  bool bind_source(int fd);  // --source-addresses
  uint32_t next_source = 0;
  bool flush_out(Slot& s);
  void read_socket(Slot& s);
  static void on_io(evutil_socket_t fd, short what, void* arg);
  void parse_responses(Slot& s);
  void handle_response(Slot& s, const ResponseHead& h, std::string_view body, size_t total);
  void on_closed(Slot& s, short what, int socket_error);
  void after_inform(Slot& s);
  void fail(Slot& s, ErrorKind kind);
  void end_session(Slot& s, Outcome outcome);

  size_t pick_device();
  void render_inform(Slot& s, int entry);

  // --cr-listen (wake_flow.cc).
  void setup_cr();
  void start_cr_timers();
  size_t local_of(uint64_t device) const {
    return static_cast<size_t>((device - dev_first) / dev_step);
  }
  bool owns(uint64_t device) const {
    return device < opt.devices && device % dev_step == dev_first;
  }
  CrValues cr_values(Slot& s);
  void on_cr(uint64_t device, bool udp);
  void start_woken(size_t local, int64_t t_cr);
  void woken_informed(const Slot& s);
  void after_woken(Slot& s);
  void on_wake_tick();
  std::optional<size_t> pick_wake();
  void on_api_answer(size_t local, const ApiWaker::Answer& a);
  void on_stun_tick();

  // --tls (tls_flow.cc).
  bool open_tls_connection(Slot& s);
  void tls_connected(Slot& s);
  ErrorKind tls_failure(Slot& s, short what, int socket_error);
  void close_tls(Slot& s);
  SSL_SESSION** session_store(Slot& s);
  const std::string& now_string();
  std::string cnonce();

  void take_input(Slot& s);
  static void on_read(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);
  static void on_kick(evutil_socket_t, short, void* arg);

  Shared& sh;
  const Options& opt;
  unsigned index;
  event_base* base = nullptr;
  const timeval* io_timeout = nullptr;  // --timeout, as a common timeout of `base`
  timeval io_timeout_tv{};
  RunStats stats;
  int64_t last_completion = 0;

  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<Slot*> idle;  // open loop: slots without a session
  size_t max_slots = 0;
  size_t inflight = 0;
  bool draining = false;

  // This thread's share of the fleet: devices first, first + step, ...
  uint64_t dev_first = 0, dev_step = 1;
  size_t dev_count = 0, cursor = 0;
  std::vector<uint8_t> busy;
  std::unordered_map<uint64_t, PendingActions> pending;

  // --each-device-once: where each device of the share stands, and the
  // retries waiting for their time (earliest first).
  enum class DevState : uint8_t { kNew, kActive, kWaiting, kDone, kLost };
  struct Retry {
    int64_t due = 0;  // monotonic µs
    size_t local = 0;
    int entry = -1;
    bool operator>(const Retry& o) const { return due > o.due; }
  };
  std::vector<DevState> dev_state;
  std::vector<uint8_t> dev_failures;  // failed sessions so far (the retry number)
  std::priority_queue<Retry, std::vector<Retry>, std::greater<Retry>> retry_queue;
  size_t next_new = 0;  // the next device that has not started
  size_t settled = 0;   // devices done, or lost (not retried)

  std::mt19937_64 rng;
  std::discrete_distribution<size_t> mix;
  std::exponential_distribution<double> gaps;
  double interval_us = 0;   // open loop, even spacing
  double next_arrival = 0;  // monotonic µs

  int tick_fd = -1;  // open loop: the 1 ms arrival clock
  event* tick = nullptr;
  event* deadline_ev = nullptr;
  event* hard_stop_ev = nullptr;
  event* poll_ev = nullptr;

  // --cr-listen: the listeners, the trigger, and per device of the share
  // whether the ACS knows it, a wake waiting for its session to end, an API
  // call in flight for it and when it was sent (0: none to time).
  std::unique_ptr<CrHttpListener> http_cr;
  std::unique_ptr<CrUdpListener> udp_cr;
  std::unique_ptr<ApiWaker> waker;
  std::string http_base;
  std::vector<uint8_t> known, wake_pending, api_pending;
  std::vector<int64_t> cr_at, api_at;
  std::vector<int64_t> wake_from;  // API call sent, until the woken InformResponse
  std::vector<std::unique_ptr<Slot>> wake_slots;
  std::vector<Slot*> wake_idle;
  event* wake_ev = nullptr;
  event* stun_ev = nullptr;
  uint64_t wakes_issued = 0, stun_issued = 0;
  size_t wake_cursor = 0, stun_cursor = 0;

  // --tls-resume with --tls-cert-dir: the session of each device of the
  // share (owned; null: none yet).
  std::vector<SSL_SESSION*> device_sessions;

  soap::Reader reader;
  soap::Envelope env;
  std::string dechunked;
  std::string challenge;
  std::string now_str;
  int64_t now_s = -1;
};

}  // namespace luacs::loadgen
