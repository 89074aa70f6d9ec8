// Connection requests on the simulated CPEs' side (--cr-listen): the
// listeners that take them and the trigger that asks luacs' API for them.
//
// One thread's devices share one HTTP listener, which names the device by
// the request path (/<device index>) and wants Digest (MD5, qop=auth) with
// that device's ConnectionRequestUsername and the password. Over UDP
// (TR-111) each device has a socket of its own and checks the requests
// that come to it with its own UdpRequestVerifier (signature, replays,
// stale timestamps).
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/loadgen/histogram.h"
#include "bench/loadgen/options.h"
#include "core/auth/digest.h"
#include "core/connreq/udp_request.h"

namespace luacs::loadgen {

struct CrStats {
  // The HTTP listener.
  uint64_t http_requests = 0;
  uint64_t http_challenges = 0;   // 401 to a request without (usable) credentials
  uint64_t http_auth_failed = 0;  // 401 to wrong credentials
  uint64_t http_ok = 0;           // 200: the device was woken
  uint64_t http_bad = 0;          // not a GET, unknown path, malformed, too large
  // The UDP sockets: datagrams by verdict (accepted, malformed,
  // wrong_user, bad_signature, stale, replayed).
  std::map<std::string, uint64_t> udp;
  uint64_t stun_sent = 0, stun_answers = 0, stun_errors = 0;

  // The devices.
  uint64_t received = 0;  // wakes taken (HTTP 200 + UDP accepted)
  uint64_t deferred = 0;  // of which came during a session and were served after it
  uint64_t merged = 0;    // of which found a wake already waiting
  uint64_t ignored = 0;   // of which came after the run's end, not asked for by it
  uint64_t woken_started = 0, woken_completed = 0;
  uint64_t tail_completed = 0;  // of which after the run's end (not among its sessions)

  // The trigger (--wake-rate).
  uint64_t wakes_sent = 0;
  uint64_t skipped_no_device = 0;              // no idle device known to the ACS
  uint64_t skipped_inflight = 0;               // --wake-max-inflight reached
  std::map<std::string, uint64_t> api;         // "200 informed", "504 timed_out", "error timeout"
  std::map<std::string, uint64_t> transports;  // of the API's answers
  Histogram api_us;                            // API call -> its answer
  Histogram api_to_cr_us;                      // API call -> connection request at the device
  Histogram wake_to_inform_us;                 // API call -> the woken device's InformResponse
  Histogram cr_to_inform_us;  // connection request at the device -> its InformResponse

  void merge(const CrStats& o);
};

// Called with a device index (global) once a request for it verified.
using WakeFn = std::function<void(uint64_t device, bool udp)>;
// Whether a device index is one of this thread's.
using OwnsFn = std::function<bool(uint64_t device)>;

class CrHttpListener {
 public:
  // Binds 127.0.0.1:port (0: any free port). Throws std::runtime_error.
  CrHttpListener(event_base* base, const CrOptions& cr, uint16_t port, OwnsFn owns, WakeFn wake,
                 CrStats& stats);
  ~CrHttpListener();
  CrHttpListener(const CrHttpListener&) = delete;
  CrHttpListener& operator=(const CrHttpListener&) = delete;

  uint16_t port() const { return port_; }
  void close_all();  // the run is over

 private:
  struct Conn;
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  static void on_read(bufferevent* bev, void* arg);
  static void on_write(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);
  void serve(Conn& c);
  // The answer to one request head; sets `close` when the connection ends.
  std::string answer(std::string_view head, bool& close);
  std::string challenge(bool stale);
  void drop(Conn& c);

  const CrOptions& cr_;
  OwnsFn owns_;
  WakeFn wake_;
  CrStats& stats_;
  evconnlistener* listener_ = nullptr;
  uint16_t port_ = 0;
  auth::NonceTable nonces_;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns_;
};

// UDP: a socket per device, as behind a real NAT every CPE has a public
// address:port of its own -- and luacs rightly merges requests to one
// address within its replay window, so devices sharing a socket could not
// be woken one after the other. Device d's socket is on port + d (port 0:
// each picked by the kernel).
class CrUdpListener {
 public:
  // The devices first, first + step, ... (count of them). Throws
  // std::runtime_error when a socket cannot be bound.
  CrUdpListener(event_base* base, const CrOptions& cr, uint16_t port, uint64_t first, uint64_t step,
                size_t count, WakeFn wake, CrStats& stats);
  ~CrUdpListener();
  CrUdpListener(const CrUdpListener&) = delete;
  CrUdpListener& operator=(const CrUdpListener&) = delete;

  // The port of the device of local index `local`.
  uint16_t port(size_t local) const { return socks_[local].port; }
  // A STUN Binding Request to --stun from the socket of `local`.
  void send_stun(size_t local);

 private:
  struct Sock {
    CrUdpListener* l = nullptr;
    uint64_t device = 0;
    int fd = -1;
    event* ev = nullptr;
    uint16_t port = 0;
    std::unique_ptr<connreq::UdpRequestVerifier> verifier;  // on the first request
  };
  static void on_read(evutil_socket_t fd, short, void* arg);
  void datagram(Sock& s, std::string_view d);

  const CrOptions& cr_;
  WakeFn wake_;
  CrStats& stats_;
  std::vector<Sock> socks_;
};

// POST /devices/{id}/connection_request over a pool of keep-alive
// connections to the API, one call per connection at a time.
class ApiWaker {
 public:
  struct Answer {
    int status = 0;         // 0: no HTTP answer
    std::string outcome;    // the answer's "outcome", or what went wrong
    std::string transport;  // the answer's "transport", "" if none
  };
  using Done = std::function<void(size_t local, const Answer& a)>;

  ApiWaker(event_base* base, const CrOptions& cr, std::chrono::milliseconds io_timeout,
           unsigned max_inflight, Done done);
  ~ApiWaker();
  ApiWaker(const ApiWaker&) = delete;
  ApiWaker& operator=(const ApiWaker&) = delete;

  // False when max_inflight calls are in flight.
  bool wake(size_t local, const std::string& device_id);
  size_t inflight() const { return inflight_; }
  void close_all();

 private:
  struct Conn;
  static void on_read(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);
  bool connect(Conn& c);
  void send(Conn& c);
  void parse(Conn& c);
  void finish(Conn& c, const Answer& a, bool keep);

  event_base* base_;
  const CrOptions& cr_;
  std::chrono::milliseconds io_timeout_;
  unsigned max_inflight_;
  Done done_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> idle_;
  size_t inflight_ = 0;
};

// A device id as one path segment: every byte but RFC 3986 unreserved
// characters percent-encoded (so the id's own '%' becomes "%25").
std::string path_segment(std::string_view id);

}  // namespace luacs::loadgen
