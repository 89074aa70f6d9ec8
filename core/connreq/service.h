// The connection-request service: wakes devices now (issue 13).
//
// It runs on a thread and libevent loop of its own, with its own asynchronous
// PostgreSQL connection, so that neither a slow CPE nor the database ever
// holds a CWMP worker or the API. Any thread calls wake() and informed();
// they post to the service's mailbox.
//
// A wake loads what the device reported of itself (TR-098 or TR-181 root:
// ConnectionRequestURL, ConnReqJabberID, NATDetected, STUNUsername,
// UDPConnectionRequestAddress) and the credentials (what luacs set on the
// device, else [connection_request] username/password), picks ONE transport
// (docs/connection-requests.md, "How the transport is chosen"): XMPP when
// luacs has an XMPP client and the device a JID; else UDP through the STUN
// server when the device is behind NAT and luacs knows its binding; else
// HTTP. It records an attempt in `connection_requests` and runs it; HTTP
// requests are bounded by `max_concurrent` (the rest wait in a queue), UDP
// and XMPP ones never take an HTTP slot (the STUN server and the XMPP
// client bound their own). A second wake for a device whose request is in
// flight, or whose session is awaited, joins it: one request, the same
// result for both. informed() -- the device's Inform with `6 CONNECTION
// REQUEST` started a session -- closes the attempt with its latency and
// answers the waiters.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/config/config.h"
#include "core/device/device.h"
#include "core/loop/loop.h"

namespace luacs::connreq {

class StunServer;
class XmppClient;

struct WakeResult {
  // "informed" (the session started), "answered" (200/204 or the XMPP IQ's
  // result, but no session within the wait), "sent" (the UDP datagrams
  // went out, no session within the wait), "auth_failed", "offline",
  // "timed_out", "denied", "no_url", "error", "unavailable" (no store, or
  // the service stopped).
  std::string outcome;
  bool session_started = false;
  int http_status = 0;
  std::string detail;
  int64_t latency_ms = -1;  // request -> Inform, when session_started
  int64_t attempt = 0;      // the connection_requests row, 0 if none
  std::string transport{};  // "http", "udp", "xmpp"; "" when none was tried
};

class Service {
 public:
  explicit Service(const config::Config& cfg);
  ~Service();  // stop()s
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Before start(), both optional and owned by the caller, who stops them
  // after this service: the STUN server UDP requests leave through (null:
  // no UDP), the XMPP client (null: no XMPP).
  void set_stun(StunServer* stun);
  // The policy's connection_request_auth(dev) (docs/policy-api.md), the
  // first source of a device's credentials. Both are called on the
  // service's thread only: `wanted` says whether the policy has the hook
  // now (then the device is loaded for it), `call` answers username and
  // password, or nullopt for the next source. Before start().
  struct AuthHook {
    std::function<bool()> wanted;
    std::function<std::optional<std::pair<std::string, std::string>>(const device::Device&)> call;
  };
  void set_auth_hook(AuthHook hook);
  // The server's in-memory copy of a device (null when it has none), any
  // thread, never blocking: a wake reads what the device reported from it
  // rather than from PostgreSQL. Before start().
  using CachedDevice = std::function<std::shared_ptr<const device::Device>(const std::string& id)>;
  void set_cached_device(CachedDevice lookup);
  void set_xmpp(XmppClient* xmpp);
  // The STUN passwords luacs set on devices (STUNPassword), by STUN
  // username, for StunServer's MESSAGE-INTEGRITY check: thread-safe, never
  // blocks, valid as long as anyone holds it (loaded at start(), kept up to
  // date by remember_stun_credentials()).
  std::function<std::optional<std::string>(const std::string& stun_username)> stun_credentials()
      const;

  void start();  // the thread and the database connection
  void stop();   // joins; waiters still waiting are dropped

  using Done = std::function<void(WakeResult)>;
  // Any thread. `done` runs through `exec` (or on the service's thread when
  // exec is empty) once the device's session has started, the request
  // failed, or `wait` passed after the CPE answered.
  void wake(const std::string& device_id, std::chrono::milliseconds wait, loop::Executor exec,
            Done done);
  // Any thread, cheap: the device's Inform carried `6 CONNECTION REQUEST`.
  void informed(const std::string& device_id);
  // Any thread, cheap: luacs set the device's ConnectionRequestUsername
  // and/or Password (nullopt: not that one); kept in
  // connection_request_credentials, they win over the fleet's.
  void remember_credentials(const std::string& device_id, std::optional<std::string> username,
                            std::optional<std::string> password);
  // Any thread, cheap: the same for the device's STUNUsername and/or
  // STUNPassword; from then on its Binding Requests must carry a valid
  // MESSAGE-INTEGRITY.
  void remember_stun_credentials(const std::string& device_id, std::optional<std::string> username,
                                 std::optional<std::string> password);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace luacs::connreq
