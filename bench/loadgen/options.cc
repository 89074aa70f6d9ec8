#include "bench/loadgen/options.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include "core/util/text.h"

#ifndef LUACS_SHARED_DIR
#define LUACS_SHARED_DIR "../shared"
#endif

namespace luacs::loadgen {
namespace {

constexpr std::string_view kDefaultEvents =
    "0 BOOTSTRAP:1,1 BOOT:2,2 PERIODIC:90,4 VALUE CHANGE:5,7 TRANSFER COMPLETE:2";

[[noreturn]] void bad(const std::string& msg) {
  throw std::invalid_argument(msg);
}

uint64_t to_u64(std::string_view opt, std::string_view v) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty())
    bad(std::string(opt) + ": not a number: " + std::string(v));
  return n;
}

double to_double(std::string_view opt, std::string_view v) {
  std::string s(v);
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno != 0 || d < 0)
    bad(std::string(opt) + ": not a non-negative number: " + s);
  return d;
}

bool is_loopback(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) return a->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

void check_cr(Options& o) {
  CrOptions& cr = o.cr;
  if (cr.wake_only) cr.devices_known = true;
  bool any = cr.port || cr.udp_port || !cr.stun.empty() || cr.wake_rate > 0 || cr.wake_only ||
             !cr.api_url.empty();
  if (!cr.on()) {
    if (any) bad("--cr-port, --stun, --wake-rate, --api, --wake-only need --cr-listen");
    return;
  }
  if (cr.password.empty()) bad("--cr-password must not be empty");
  if (cr.udp() && cr.udp_port && uint64_t{cr.udp_port} + o.devices > 65536)
    bad("--cr-udp-port: device d listens on it + d; that runs past 65535 with --devices " +
        std::to_string(o.devices));
  if (!cr.stun.empty()) {
    if (!cr.udp()) bad("--stun needs --cr-listen udp or both");
    Target t = parse_url("http://" + cr.stun, o.allow_remote);
    cr.stun_addr = t.addr;
    cr.stun_addr_len = t.addr_len;
  }
  if (cr.wake_rate > 0 || cr.wake_only) {
    if (cr.api_url.empty() || cr.api_token.empty())
      bad("--wake-rate and --wake-only need --api and --api-token");
    if (cr.wake_only && cr.wake_rate == 0) bad("--wake-only needs --wake-rate");
    if (o.each_device_once) bad("--wake-rate and --each-device-once exclude each other");
  }
  if (!cr.api_url.empty()) {
    cr.api = parse_url(cr.api_url, o.allow_remote);
    if (cr.api.tls) bad("--api: https:// is not supported");
  }
  if (o.threads > 1 &&
      (uint64_t{cr.port} + o.threads > 65536 || uint64_t{cr.udp_port} + o.threads > 65536))
    bad("--cr-port/--cr-udp-port + threads runs past 65535");
}

void check_tls(Options& o) {
  TlsOptions& t = o.tls;
  if (o.target.tls) t.on = true;
  if (!t.on && (t.resume || !t.ca.empty() || !t.cert_dir.empty() || !t.sigalgs.empty()))
    bad("--tls-resume, --tls-ca, --tls-cert-dir and --tls-sigalgs need --tls or an https:// --url");
}

}  // namespace

std::vector<EventMixEntry> parse_event_mix(std::string_view spec) {
  std::vector<EventMixEntry> out;
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view item = text::trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    EventMixEntry e;
    size_t colon = item.rfind(':');
    std::string_view codes = item;
    if (colon != std::string_view::npos) {
      codes = text::trim(item.substr(0, colon));
      e.weight = to_double("--events", text::trim(item.substr(colon + 1)));
    }
    while (!codes.empty()) {
      size_t plus = codes.find('+');
      std::string_view c = text::trim(codes.substr(0, plus));
      codes = plus == std::string_view::npos ? std::string_view() : codes.substr(plus + 1);
      if (c.empty()) continue;
      if (c == "7 TRANSFER COMPLETE") e.transfer_complete = true;
      e.codes.emplace_back(c);
    }
    if (e.codes.empty()) bad("--events: an entry has no event code");
    if (e.weight > 0) out.push_back(std::move(e));
  }
  if (out.empty()) bad("--events: no entry with a positive weight");
  return out;
}

Target parse_url(std::string_view url, bool allow_remote) {
  Target t;
  constexpr std::string_view kHttp = "http://", kHttps = "https://";
  std::string_view rest;
  if (url.substr(0, kHttp.size()) == kHttp) {
    rest = url.substr(kHttp.size());
  } else if (url.substr(0, kHttps.size()) == kHttps) {
    rest = url.substr(kHttps.size());
    t.tls = true;
  } else {
    bad("--url: only http:// and https:// URLs are supported: " + std::string(url));
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  t.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) bad("--url: unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad("--url: bad authority");
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) bad("--url: no host");
  t.host = std::string(host);
  if (!port.empty()) {
    uint64_t p = to_u64("--url port", port);
    if (p == 0 || p > 65535) bad("--url: bad port");
    t.port = static_cast<uint16_t>(p);
  } else {
    t.port = t.tls ? 443 : 80;
  }
  t.host_header = std::string(authority);

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  // Names other than localhost are looked up only when remote targets are allowed.
  if (!allow_remote && t.host != "localhost") hints.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  std::string service = std::to_string(t.port);
  int rc = getaddrinfo(t.host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    bad("--url: cannot resolve " + t.host + (allow_remote ? "" : " (only loopback addresses)") +
        ": " + gai_strerror(rc));
  }
  std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
  t.addr_len = static_cast<socklen_t>(res->ai_addrlen);
  freeaddrinfo(res);
  if (!allow_remote && !is_loopback(t.addr))
    bad("--url: " + t.host + " is not a loopback address (use --allow-remote to target it)");
  return t;
}

std::chrono::microseconds retry_wait(const Options& o, unsigned n, double u) {
  double low_ms = 0;
  switch (o.busy_retry) {
    case BusyRetry::kNone:
      return std::chrono::microseconds(0);
    case BusyRetry::kFixed:
      low_ms = static_cast<double>(o.busy_retry_ms.count());
      break;
    case BusyRetry::kCwmp: {
      // CWMPRetryMinimumWaitInterval 5 s, CWMPRetryIntervalMultiplier 2000.
      unsigned e = std::clamp(n, 1u, 10u);
      low_ms = 5000.0 * static_cast<double>(1u << (e - 1));
      break;
    }
  }
  // [low, 2 * low): k = 2 for both.
  return std::chrono::microseconds(static_cast<int64_t>(low_ms * 1000 * (1 + u)));
}

std::string busy_retry_name(const Options& o) {
  switch (o.busy_retry) {
    case BusyRetry::kNone:
      return "none";
    case BusyRetry::kCwmp:
      return "cwmp";
    case BusyRetry::kFixed:
      return std::to_string(o.busy_retry_ms.count());
  }
  return "?";
}

std::string cr_listen_name(CrListen l) {
  switch (l) {
    case CrListen::kNone:
      return "none";
    case CrListen::kHttp:
      return "http";
    case CrListen::kUdp:
      return "udp";
    case CrListen::kBoth:
      return "both";
  }
  return "?";
}

std::string cr_username(const CrOptions& cr, uint64_t index) {
  std::string u = cr.username;
  size_t at = u.find("{i}");
  if (at != std::string::npos) u.replace(at, 3, std::to_string(index));
  return u;
}

std::string usage() {
  return R"(usage: luacs-loadgen [options]
Simulates CWMP CPEs (Inform, optional TransferComplete, empty POST, answers to
ACS requests) against an ACS and reports sessions/s and latency.

Target
  --url URL             http://127.0.0.1:7547/ (loopback only, see --allow-remote);
                        https://... speaks TLS (as --tls)
  --allow-remote        allow a host that is not a loopback address
TLS (bench/README.md, "HTTPS")
  --tls                 connect with TLS (one handshake per new connection)
  --tls-resume          offer the session of the slot's previous connection
                        (with --tls-cert-dir: of the device's previous one)
  --tls-ca FILE         verify the server's certificate against FILE (and
                        its name or address); default: no verification
  --tls-cert-dir DIR    client certificates: device SERIAL presents
                        DIR/device-SERIAL.crt and .key (scripts/dev-ca DIR
                        device SERIAL), or DIR/SERIAL.crt and .key
  --tls-sigalgs LIST    signature algorithms offered, e.g. RSA-PSS+SHA256:
                        RSA+SHA256 to get a server's RSA certificate
Load
  --concurrency N       closed loop: N sessions in flight (default 16)
  --rate R              open loop: start R sessions per second
  --spacing S           open loop arrivals: poisson (default) or even
  --max-inflight M      open loop: cap on sessions in flight (default 10000)
  --duration S          stop starting sessions after S seconds (default 10)
  --sessions K          stop after K completed sessions
  --threads T           event-loop threads (default 1)
  --each-device-once    every device completes one session, then rests; the
                        run ends when all have (--duration: hard limit, default
                        600 s); open loop: --rate new devices per second
  --busy-retry SPEC     after a 503 or a failed session (--each-device-once):
                        cwmp (default: the TR-069 retry schedule, 5-10 s,
                        10-20 s, ...), MS (a wait in [MS, 2*MS) ms) or none
Simulated CPEs
  --devices D           fleet size (default max(10000, N)); round-robin over devices
  --model M             tr098 | tr181 | mixed (default mixed)
  --datamodels DIR      where the data-model CSVs are
  --events MIX          weighted event mix (default ")" +
         std::string(kDefaultEvents) + R"(")
                        codes of one session may be joined with '+'
  --new-connection      new TCP connection per session (default)
  --keep-alive          one connection per simulated CPE slot, reused
  --source-addresses N  connect from 127.0.0.2 .. 127.0.0.N+1 in turn (an
                        IPv4 loopback target): past ~14,000 new connections/s
                        one source address runs out of ephemeral ports
  --no-cookie           never echo the session cookie
  --username U --password P   answer Digest challenges (qop=auth)
  --timeout MS          per-request and connect timeout (default 10000)
  --parse-all           parse every reply with the SOAP reader (default: an
                        InformResponse is recognised by a byte search)
Connection requests (bench/README.md, "Connection requests")
  --cr-listen L         http | udp | both: every device reports where it takes
                        connection requests (ConnectionRequestURL
                        http://127.0.0.1:PORT/<device index>; NATDetected,
                        UDPConnectionRequestAddress) and, once woken, starts a
                        session with 6 CONNECTION REQUEST
  --cr-port P           TCP port of thread 0's listener (thread t: P + t;
                        default 0: picked by the kernel)
  --cr-udp-port P       UDP: device d has a socket of its own on P + d
                        (default 0: picked by the kernel)
  --cr-username U       each device's ConnectionRequestUsername, "{i}" = its
                        index (default cr-{i})
  --cr-password P       every device's ConnectionRequestPassword (cr-secret)
  --stun HOST:PORT      UDP: STUN Binding Requests (USERNAME = the device's
                        username) to luacs' STUN server; devices report
                        STUNEnable and STUNUsername
  --stun-interval S     each device's binding keep-alive period (default 30)
  --wake-rate N         wake N devices per second (even spacing) through
                        POST /devices/{id}/connection_request; a device is
                        woken when idle and known to the ACS
  --api URL             luacs' API, http://127.0.0.1:PORT
  --api-token T         a token of role operate
  --wake-timeout MS     the API call's ?timeout= (default 5000)
  --wake-max-inflight M API calls in flight at most (default 1000)
  --wake-only           no sessions but woken ones, for --duration seconds
                        (implies --devices-known)
  --devices-known       every device counts as known to the ACS from the
                        start (an earlier run informed it)
Output
  --json FILE           write every figure as JSON to FILE ('-' = stdout)
  --max-error-rate X    exit 0 if errors/attempts <= X (default 0)
  --server-pid PID      report the CPU time PID used during the run
  --seed N              random seed (default 1)
  --quiet               no human summary
)";
}

Options parse_options(int argc, char** argv) {
  Options o;
  std::string events(kDefaultEvents);
  std::string model = "mixed";
  bool keep_alive_set = false, new_conn_set = false;
  std::string busy_retry;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_value = false;
    if (size_t eq = arg.find('='); arg.substr(0, 2) == "--" && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto next = [&]() -> std::string_view {
      if (has_value) return value;
      if (i + 1 >= argc) bad(std::string(arg) + ": needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      throw std::invalid_argument("");
    } else if (arg == "--url") {
      o.url = next();
    } else if (arg == "--allow-remote") {
      o.allow_remote = true;
    } else if (arg == "--concurrency" || arg == "-c") {
      o.concurrency = static_cast<unsigned>(to_u64(arg, next()));
      if (o.concurrency == 0) bad("--concurrency must be > 0");
    } else if (arg == "--rate") {
      o.rate = to_double(arg, next());
      if (o.rate <= 0) bad("--rate must be > 0");
    } else if (arg == "--spacing") {
      std::string_view s = next();
      if (s == "poisson")
        o.poisson = true;
      else if (s == "even")
        o.poisson = false;
      else
        bad("--spacing: poisson or even");
    } else if (arg == "--max-inflight") {
      o.max_inflight = static_cast<unsigned>(to_u64(arg, next()));
      if (o.max_inflight == 0) bad("--max-inflight must be > 0");
    } else if (arg == "--duration") {
      o.duration_s = to_double(arg, next());
    } else if (arg == "--sessions") {
      o.sessions = to_u64(arg, next());
    } else if (arg == "--each-device-once") {
      o.each_device_once = true;
    } else if (arg == "--busy-retry") {
      busy_retry = next();
      if (busy_retry.empty()) bad("--busy-retry: cwmp, none or a number of milliseconds");
    } else if (arg == "--devices") {
      o.devices = to_u64(arg, next());
      if (o.devices == 0) bad("--devices must be > 0");
    } else if (arg == "--new-connection") {
      o.keep_alive = false;
      new_conn_set = true;
    } else if (arg == "--keep-alive") {
      o.keep_alive = true;
      keep_alive_set = true;
    } else if (arg == "--no-cookie") {
      o.echo_cookie = false;
    } else if (arg == "--username") {
      o.username = next();
    } else if (arg == "--password") {
      o.password = next();
    } else if (arg == "--events") {
      events = next();
    } else if (arg == "--model") {
      model = next();
    } else if (arg == "--datamodels") {
      o.datamodels_dir = next();
    } else if (arg == "--source-addresses") {
      o.source_addresses = static_cast<unsigned>(to_u64(arg, next()));
      if (o.source_addresses > 250) bad("--source-addresses: 0..250");
    } else if (arg == "--threads") {
      o.threads = static_cast<unsigned>(to_u64(arg, next()));
      if (o.threads == 0 || o.threads > 256) bad("--threads: 1..256");
    } else if (arg == "--timeout") {
      o.timeout = std::chrono::milliseconds(to_u64(arg, next()));
      if (o.timeout.count() == 0) bad("--timeout must be > 0");
    } else if (arg == "--json") {
      o.json_path = next();
    } else if (arg == "--max-error-rate") {
      o.max_error_rate = to_double(arg, next());
    } else if (arg == "--server-pid") {
      o.server_pid = static_cast<int>(to_u64(arg, next()));
    } else if (arg == "--seed") {
      o.seed = to_u64(arg, next());
    } else if (arg == "--parse-all") {
      o.parse_all = true;
    } else if (arg == "--cr-listen") {
      std::string_view l = next();
      if (l == "http")
        o.cr.listen = CrListen::kHttp;
      else if (l == "udp")
        o.cr.listen = CrListen::kUdp;
      else if (l == "both")
        o.cr.listen = CrListen::kBoth;
      else
        bad("--cr-listen: http, udp or both");
    } else if (arg == "--cr-port" || arg == "--cr-udp-port") {
      uint64_t p = to_u64(arg, next());
      if (p > 65535) bad(std::string(arg) + ": 0..65535");
      (arg == "--cr-port" ? o.cr.port : o.cr.udp_port) = static_cast<uint16_t>(p);
    } else if (arg == "--cr-username") {
      o.cr.username = next();
    } else if (arg == "--cr-password") {
      o.cr.password = next();
    } else if (arg == "--stun") {
      o.cr.stun = next();
    } else if (arg == "--stun-interval") {
      o.cr.stun_interval_s = to_double(arg, next());
      if (o.cr.stun_interval_s < 0.1) bad("--stun-interval: at least 0.1 s");
    } else if (arg == "--wake-rate") {
      o.cr.wake_rate = to_double(arg, next());
    } else if (arg == "--api") {
      o.cr.api_url = next();
    } else if (arg == "--api-token") {
      o.cr.api_token = next();
    } else if (arg == "--wake-timeout") {
      o.cr.wake_timeout = std::chrono::milliseconds(to_u64(arg, next()));
      if (o.cr.wake_timeout.count() < 1 || o.cr.wake_timeout.count() > 120000)
        bad("--wake-timeout: 1..120000");
    } else if (arg == "--wake-max-inflight") {
      o.cr.wake_max_inflight = static_cast<unsigned>(to_u64(arg, next()));
      if (o.cr.wake_max_inflight == 0) bad("--wake-max-inflight must be > 0");
    } else if (arg == "--wake-only") {
      o.cr.wake_only = true;
    } else if (arg == "--devices-known") {
      o.cr.devices_known = true;
    } else if (arg == "--tls") {
      o.tls.on = true;
    } else if (arg == "--tls-resume") {
      o.tls.resume = true;
    } else if (arg == "--tls-ca") {
      o.tls.ca = next();
    } else if (arg == "--tls-cert-dir") {
      o.tls.cert_dir = next();
    } else if (arg == "--tls-sigalgs") {
      o.tls.sigalgs = next();
    } else if (arg == "--quiet") {
      o.quiet = true;
    } else {
      bad("unknown option: " + std::string(arg));
    }
  }
  if (keep_alive_set && new_conn_set) bad("--keep-alive and --new-connection exclude each other");
  if (o.concurrency > 0 && o.rate > 0) bad("--concurrency and --rate exclude each other");
  if (o.cr.wake_only && (o.concurrency > 0 || o.rate > 0 || o.each_device_once || o.sessions))
    bad("--wake-only excludes --concurrency, --rate, --each-device-once and --sessions");
  if (o.concurrency == 0 && o.rate == 0 && !o.cr.wake_only) o.concurrency = 16;
  if (o.each_device_once) {
    if (o.sessions) bad("--each-device-once and --sessions exclude each other");
    if (o.duration_s == 0) o.duration_s = kEachDeviceOnceLimitS;
    o.busy_retry = BusyRetry::kCwmp;
  }
  if (busy_retry == "cwmp") {
    o.busy_retry = BusyRetry::kCwmp;
  } else if (busy_retry == "none") {
    o.busy_retry = BusyRetry::kNone;
  } else if (!busy_retry.empty()) {
    o.busy_retry = BusyRetry::kFixed;
    o.busy_retry_ms = std::chrono::milliseconds(to_u64("--busy-retry", busy_retry));
    if (o.busy_retry_ms.count() == 0) bad("--busy-retry: a number of milliseconds must be > 0");
  }
  // Retrying is part of playing each device to completion; the other modes
  // count a 503 and move on to the next device.
  if (o.busy_retry != BusyRetry::kNone && !o.each_device_once)
    bad("--busy-retry needs --each-device-once");
  if (o.duration_s == 0 && o.sessions == 0) o.duration_s = 10;
  if (!o.username.empty() && o.password.empty()) bad("--username needs --password");
  if (model == "tr098")
    o.model = ModelChoice::kTr098;
  else if (model == "tr181")
    o.model = ModelChoice::kTr181;
  else if (model == "mixed")
    o.model = ModelChoice::kMixed;
  else
    bad("--model: tr098, tr181 or mixed");
  if (o.datamodels_dir.empty())
    o.datamodels_dir = std::string(LUACS_SHARED_DIR) + "/corpus/datamodels";
  if (o.devices == 0) o.devices = std::max<uint64_t>(10000, o.concurrency);
  check_cr(o);
  if (o.threads > 1 && o.concurrency > 0 && o.threads > o.concurrency) o.threads = o.concurrency;
  if (o.threads > o.devices) o.threads = static_cast<unsigned>(o.devices);
  o.events = parse_event_mix(events);
  o.target = parse_url(o.url, o.allow_remote);
  if (o.source_addresses) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&o.target.addr);
    if (o.target.addr.ss_family != AF_INET || (ntohl(sin->sin_addr.s_addr) >> 24) != 127)
      bad("--source-addresses needs an IPv4 loopback URL (127.x.x.x)");
    if (o.target.tls || o.tls.on) bad("--source-addresses is for plain HTTP");
  }
  check_tls(o);
  return o;
}

}  // namespace luacs::loadgen
