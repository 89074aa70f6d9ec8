// One load thread: its own event loop, its share of the sessions in flight
// and of the fleet, and its own figures (merged by main at the end).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen/fleet.h"
#include "bench/loadgen/histogram.h"
#include "bench/loadgen/options.h"
#include "bench/loadgen/wake.h"

namespace luacs::loadgen {

// Why a session failed. A 503 is not an error: it is counted as busy.
enum class ErrorKind : uint8_t {
  kConnect,   // connect() failed or was refused
  kTimeout,   // no response (or no connection) within --timeout
  kReset,     // connection closed or reset while a response was due
  kAuth,      // 401 after answering a fresh challenge, or 401 without credentials
  kHttp4xx,   // other 4xx
  kHttp5xx,   // 5xx other than 503
  kParse,     // malformed HTTP response or SOAP body
  kProtocol,  // well-formed but not what CWMP says comes next
  kTls,       // TLS handshake refused (an alert, the server's certificate not verified)
  kCount
};
std::string_view error_name(ErrorKind k);
// What an overloaded server does to a session: connect_failed, timeout,
// connection_reset.
bool overload_error(ErrorKind k);

struct RunStats {
  Histogram inform_us;        // Inform sent -> InformResponse received (incl. a 401 round trip)
  Histogram session_us;       // session start (connect, or the scheduled start) -> 204
  Histogram schedule_lag_us;  // open loop: actual start - scheduled start
  uint64_t started = 0, completed = 0, busy = 0, unfinished = 0;
  std::array<uint64_t, static_cast<size_t>(ErrorKind::kCount)> errors{};
  uint64_t requests = 0, responses = 0, connections = 0, bytes_out = 0, bytes_in = 0;
  uint64_t challenges = 0;     // 401s answered with credentials
  uint64_t stale_retries = 0;  // keep-alive connection found closed, request re-sent
  uint64_t transfer_completes = 0;
  uint64_t late_starts = 0;                      // open loop: started > 10 ms after schedule
  uint64_t skipped_starts = 0;                   // open loop: not started, --max-inflight reached
  std::map<std::string, uint64_t> acs_requests;  // ACS RPCs answered, by method

  // --each-device-once.
  uint64_t retries = 0;  // sessions started again for a device after a 503 or a failure
  uint64_t devices_done = 0, devices_not_done = 0;
  int64_t first_start_us = 0, last_device_us = 0;  // monotonic; 0 = none
  std::vector<std::string> not_done;               // serials, the first kNotDoneListed

  static constexpr size_t kNotDoneListed = 100;

  CrStats cr;  // --cr-listen

  // --tls: handshakes completed, of which resumed, and those that did not
  // complete once the TCP connect went through (refused by OpenSSL, closed
  // or reset, timed out); connections that presented a client
  // certificate; connect start -> handshake done.
  uint64_t tls_handshakes = 0, tls_resumed = 0, tls_handshake_failures = 0, tls_client_certs = 0;
  Histogram tls_handshake_us;
  // The key type of the certificate the server sent ("EC", "RSA"), by
  // handshake (a resumed one counts the certificate of its session).
  std::map<std::string, uint64_t> tls_server_keys;

  void merge(const RunStats& o);
  uint64_t error_total() const;
  // Failures an overloaded server causes (connect_failed, timeout,
  // connection_reset): with --each-device-once they are retried like a 503.
  uint64_t overload_errors() const;
};

class TlsClient;

// What the threads share.
struct Shared {
  Shared(const Options& o, const Fleet& f) : opt(o), fleet(f) {}
  const Options& opt;
  const Fleet& fleet;
  const TlsClient* tls = nullptr;  // --tls
  int64_t start_us = 0;            // monotonic
  int64_t deadline_us = 0;         // stop starting sessions (0: none)
  // --sessions: starts still allowed; a failed session gives its start back
  // (at most `sessions` times, so a dead server cannot keep us running).
  std::atomic<int64_t> budget{0};
  std::atomic<int64_t> give_backs{0};
  // --sessions: once more sessions failed than --max-error-rate allows, the
  // run cannot pass any more; it stops instead of retrying (a hung server
  // would otherwise cost K / N timeouts). --each-device-once: the same with
  // K = devices, counting only errors other than overload_errors().
  std::atomic<uint64_t> errors{0};
  std::atomic<bool> gave_up{false};
  std::atomic<bool> stop{false};  // SIGINT, or gave_up: finish what is in flight
};

int64_t monotonic_us();

class Runner {
 public:
  Runner(Shared& shared, unsigned index);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Runs the event loop until this thread's share is done.
  void run();
  const RunStats& stats() const;
  int64_t last_completion_us() const;  // monotonic time of the last session end
  // --cr-listen: the port of this thread's HTTP listener, and the UDP port
  // of its first device (0: none).
  uint16_t cr_http_port() const;
  uint16_t cr_udp_port() const;

  struct Impl;  // the event loop and its slots (runner.cc)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace luacs::loadgen
