// Command line of luacs-loadgen: what to simulate and how hard to push.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace luacs::loadgen {

// One entry of --events: the event codes one session carries, and how often
// such a session is picked relative to the other entries.
struct EventMixEntry {
  std::vector<std::string> codes;  // "2 PERIODIC", or several joined by '+'
  double weight = 1;
  bool transfer_complete = false;  // carries 7 TRANSFER COMPLETE: also sends TransferComplete
};

enum class ModelChoice { kTr098, kTr181, kMixed };

// What a simulated CPE does after a 503 or a failed session (--busy-retry).
enum class BusyRetry {
  kNone,   // nothing: the session is counted and the device moves on
  kCwmp,   // the CWMP session retry schedule (TR-069 Amendment 6, 3.2.1.1)
  kFixed,  // a random wait in [busy_retry_ms, 2 * busy_retry_ms)
};

// The ACS endpoint, resolved once.
struct Target {
  std::string host;  // as written in the URL
  uint16_t port = 7547;
  std::string path = "/";   // request target, also the Digest uri
  std::string host_header;  // "host:port"
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  bool tls = false;  // an https:// URL
};

// The CPEs speak HTTPS (--tls; bench/README.md, "HTTPS").
struct TlsOptions {
  bool on = false;       // --tls, or an https:// --url
  bool resume = false;   // --tls-resume: offer the session of the previous connection
  std::string ca;        // --tls-ca: verify the server against it ("" = no verification)
  std::string cert_dir;  // --tls-cert-dir: client certificates by device serial
  std::string sigalgs;   // --tls-sigalgs: the signature algorithms offered (OpenSSL syntax)
};

// Which connection requests the simulated CPEs listen for (--cr-listen).
enum class CrListen : uint8_t { kNone, kHttp, kUdp, kBoth };

// The simulated CPEs as targets of connection requests, and the trigger
// that wakes them through luacs' API (bench/README.md, "Connection
// requests").
struct CrOptions {
  CrListen listen = CrListen::kNone;
  // Thread t listens on port + t (TCP), device d on udp_port + d (UDP);
  // 0: ports the kernel picks (fine for one run; a later run must find the
  // devices at the addresses they reported, so benchmarks fix them).
  uint16_t port = 0, udp_port = 0;
  // The device's ConnectionRequestUsername: "{i}" stands for the device
  // index, so every device has its own; one password for all.
  std::string username = "cr-{i}";
  std::string password = "cr-secret";
  // --stun HOST:PORT: Binding Requests with USERNAME every stun_interval
  // from the UDP socket (TR-111 binding keep-alives).
  std::string stun;
  sockaddr_storage stun_addr{};
  socklen_t stun_addr_len = 0;
  double stun_interval_s = 30;

  // The trigger: POST /devices/{id}/connection_request at wake_rate per
  // second, at most wake_max_inflight API calls in flight.
  double wake_rate = 0;
  std::string api_url;
  Target api;
  std::string api_token;
  std::chrono::milliseconds wake_timeout{5000};  // ?timeout= of the API call
  unsigned wake_max_inflight = 1000;
  // No sessions but woken ones (--wake-only), or (--devices-known) every
  // device counts as known to the ACS from the start: an earlier run with
  // the same --cr-* options informed it. Otherwise a device is woken only
  // once it has completed a session in this run.
  bool wake_only = false;
  bool devices_known = false;

  bool http() const { return listen == CrListen::kHttp || listen == CrListen::kBoth; }
  bool udp() const { return listen == CrListen::kUdp || listen == CrListen::kBoth; }
  bool on() const { return listen != CrListen::kNone; }
};

struct Options {
  std::string url = "http://127.0.0.1:7547/";
  Target target;
  bool allow_remote = false;

  // Load shape: closed loop (concurrency) or open loop (rate).
  unsigned concurrency = 0;
  double rate = 0;                // sessions started per second
  bool poisson = true;            // --spacing poisson|even
  unsigned max_inflight = 10000;  // open loop: sessions in flight before starts are skipped

  // When to stop: after duration_s, or after `sessions` completed sessions.
  double duration_s = 0;
  uint64_t sessions = 0;

  // --each-device-once: every device completes one session, then rests; the
  // run ends when all have (duration_s is then a hard limit). A device whose
  // session got a 503 or failed starts again as --busy-retry says.
  bool each_device_once = false;
  BusyRetry busy_retry = BusyRetry::kNone;
  std::chrono::milliseconds busy_retry_ms{0};  // kFixed

  uint64_t devices = 0;  // simulated fleet size (0: 10000, at least the concurrency)
  bool keep_alive = false;
  // New connections from 127.0.0.2 .. 127.0.0.(N+1) in turn (IPv4 loopback
  // targets only; 0: the kernel's choice, 127.0.0.1). Each source address
  // has its own ephemeral ports: one address caps new connections near
  // 14,000/s (connect() takes the even ports, and a port left in TIME_WAIT
  // is reused after a second), which is a limit of the generator, not of the
  // server measured.
  unsigned source_addresses = 0;
  bool echo_cookie = true;
  std::string username, password;  // Digest, when username is set
  std::vector<EventMixEntry> events;
  ModelChoice model = ModelChoice::kMixed;
  std::string datamodels_dir;
  unsigned threads = 1;
  std::chrono::milliseconds timeout{10000};  // per request, and for a connect
  std::string json_path;                     // "" none, "-" stdout
  double max_error_rate = 0;                 // errors / sessions attempted allowed for exit 0
  int server_pid = 0;                        // read its CPU time from /proc for the report
  bool parse_all = false;                    // parse every ACS reply, InformResponse included
  bool quiet = false;
  uint64_t seed = 1;
  CrOptions cr;
  TlsOptions tls;
};

// --each-device-once without --duration: the run's hard limit in seconds.
inline constexpr double kEachDeviceOnceLimitS = 600;

// Throws std::invalid_argument with a message for the user.
Options parse_options(int argc, char** argv);
std::string usage();

// "0 BOOTSTRAP:1,1 BOOT:2,2 PERIODIC:90" (codes may be joined with '+').
std::vector<EventMixEntry> parse_event_mix(std::string_view spec);

// The wait before retry number `n` (1 = the first retry after a failed
// session) under `o.busy_retry`, from a uniform draw u in [0, 1). kCwmp:
// [m * k^(n-1), m * k^n) with m = 5 s, k = 2 and n capped at 10 (the table of
// TR-069 3.2.1.1: 5-10 s, 10-20 s, ... 2560-5120 s from the 10th retry on).
std::chrono::microseconds retry_wait(const Options& o, unsigned n, double u);

// "cwmp", "none" or the milliseconds of --busy-retry MS.
std::string busy_retry_name(const Options& o);

// "http", "udp", "both" or "none".
std::string cr_listen_name(CrListen l);

// --cr-username for device `index` ("{i}" replaced).
std::string cr_username(const CrOptions& cr, uint64_t index);

// http://host[:port][/path] or https://... (Target::tls). Refuses hosts that are not loopback
// unless allow_remote. Throws std::invalid_argument.
Target parse_url(std::string_view url, bool allow_remote);

}  // namespace luacs::loadgen
