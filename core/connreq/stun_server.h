// The built-in STUN server of TR-111 Part 2, and the UDP connection
// requests that leave from its sockets.
//
// A CPE behind NAT sends STUN Binding Requests to [stun] listen to learn
// its public address and keep the NAT binding open. The server answers
// each (XOR-MAPPED-ADDRESS = the source address as seen here) and
// remembers, by the request's USERNAME (the CPE's
// ManagementServer.STUNUsername), that public address: the binding. A UDP
// connection request sent to the binding FROM the same socket passes the
// CPE's NAT, since the NAT saw the CPE talk to that address and port.
//
// Its own thread and libevent loop, one UDP socket per listen address.
// Every datagram is untrusted: what does not parse, is not a Binding
// Request, or fails MESSAGE-INTEGRITY is dropped or refused and counted by
// reason; nothing is buffered beyond one datagram; the table of bindings is
// bounded (the least recently seen go first).
//
// Not here: which addresses luacs may send to (the connection-request
// service checks [connection_request] allow/deny before calling
// send_connection_request, and App hands the same rules in as
// StunServerOptions::refuse for the last check), the device <-> STUN
// username mapping and the STUN passwords (the service keeps them).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config/config.h"
#include "core/connreq/stun.h"

namespace luacs::connreq {

struct StunServerOptions {
  std::vector<config::ListenAddress> listen;  // port 0 = any free port (tests)
  // When each datagram of a UDP connection request goes out, counted from
  // the first: TR-111 has no reply, so the same message (same id) is sent
  // a few times in case one is lost.
  std::vector<std::chrono::milliseconds> send_schedule{std::chrono::milliseconds{0},
                                                       std::chrono::milliseconds{500},
                                                       std::chrono::milliseconds{1500}};
  // A request for a target that had one less than this ago (or still in
  // flight) is merged into it, not sent again.
  std::chrono::milliseconds replay_window{5000};
  size_t max_bindings = 1'000'000;
  // Why luacs will not send to an address (nullopt: it may), checked right
  // before a connection request leaves -- the binding may have moved since
  // the caller looked at it. Empty: every address. App sets it from
  // [connection_request] allow/deny/ports (connreq::Rules::refuse).
  std::function<std::optional<std::string>(const sockaddr*)> refuse;
};
// [stun] listen, retries, retry_interval (doubling: 0, i, 3i, 7i, ...),
// replay_window.
StunServerOptions stun_options_from(const config::Config& cfg);

// A device's public UDP address, as its last accepted Binding Request
// showed it.
struct Binding {
  stun::Address address;
  std::chrono::system_clock::time_point seen;     // the last Binding Request
  std::chrono::system_clock::time_point changed;  // when `address` last changed (or was learned)
  bool binding_change = false;                    // the last request carried BINDING-CHANGE
  bool connection_request_binding = false;        // ... and CONNECTION-REQUEST-BINDING
  bool authenticated = false;                     // its MESSAGE-INTEGRITY was checked
};

// The STUN password of a STUN username, nullopt when luacs knows none (then
// the request is answered and learned without an integrity check). Called
// on the STUN thread for every request with a USERNAME: must be thread-safe
// and must not block (an in-memory lookup).
using StunCredentials = std::function<std::optional<std::string>(const std::string& username)>;

// What TR-111 signs the request with: the device's
// ManagementServer.ConnectionRequestUsername / Password.
struct UdpRequestCredentials {
  std::string username;
  std::string password;
};

enum class SendResult {
  kSent,        // every datagram of the schedule went out
  kMerged,      // one for the same target is in flight or was sent within replay_window
  kNoBinding,   // the target is a STUN username with no binding learned
  kBadTarget,   // not a numeric address:port, or no socket of its family
  kSendFailed,  // no datagram could be sent (sendto failed every time)
  kStopped,     // the server stopped before it was done
  kDenied,      // StunServerOptions::refuse refused the address: nothing sent
};
std::string_view to_string(SendResult r);

// "192.0.2.7:30005", "[2001:db8::7]:30005"; nullopt for anything else
// (names included: a UDP target is never resolved).
std::optional<stun::Address> numeric_target(std::string_view s);
// The socket address of `a` (its length in `len`).
sockaddr_storage to_sockaddr(const stun::Address& a, socklen_t& len);

class StunServer {
 public:
  // `credentials` empty: no integrity is ever required.
  StunServer(StunServerOptions opts, StunCredentials credentials);
  ~StunServer();  // stops
  StunServer(const StunServer&) = delete;
  StunServer& operator=(const StunServer&) = delete;

  // Binds every listen address (throws std::runtime_error "cannot listen on
  // <host:port>: <reason>") and starts the thread.
  void start();
  // Joins the thread; requests still in flight end with kStopped
  // (their `done` runs on the calling thread). Idempotent.
  void stop();
  // The bound ports, in the order of `listen` (after start()).
  std::vector<uint16_t> ports() const;

  // The binding learned for a STUN username. Any thread.
  std::optional<Binding> binding(const std::string& username) const;
  size_t binding_count() const;  // any thread

  // Sends a signed TR-111 UDP connection request to `target`: a STUN
  // username (its learned binding; sent from the socket the binding came
  // to) or a numeric "192.0.2.7:30005" / "[2001:db8::7]:30005" (from the
  // first socket of its family). Every datagram of the send schedule
  // carries the same ts, id and cnonce. `done` runs once on the STUN thread
  // (must not block) when the last datagram is out or the request is
  // refused. Any thread; never blocks. Before start() or after stop():
  // kStopped at once; one posted while the server stops may never call
  // `done`.
  void send_connection_request(const std::string& target, UdpRequestCredentials credentials,
                               std::function<void(SendResult)> done);
  // The request to `target` did its job (the device's `6 CONNECTION
  // REQUEST` Inform came): its retransmissions stop (its `done` runs with
  // kSent) and the replay window no longer merges a new request into it.
  // Any thread.
  void settled(const std::string& target);

  // ---- counters (any thread): for logs and /metrics
  // Datagrams dropped or refused, by reason: stun::to_string(ParseError)
  // ("truncated", "oversized", "bad_cookie", ...), "not_request" (a
  // response or indication), "bad_request" (MESSAGE-INTEGRITY without
  // USERNAME: 400), "unauthorized" (integrity missing or wrong: 401).
  std::vector<std::pair<std::string, uint64_t>> drops() const;
  uint64_t dropped(std::string_view reason) const;
  uint64_t answered() const;        // Binding Success Responses sent
  uint64_t datagrams_sent() const;  // connection-request datagrams sent

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace luacs::connreq
