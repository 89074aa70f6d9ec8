// Connection requests over XMPP (TR-069 Annex K): luacs logs in to the
// operator's XMPP server as a client and sends the connectionRequest IQ to a
// device's ConnReqJabberID; the device answers the IQ and then opens a CWMP
// session with "6 CONNECTION REQUEST".
//
// The client runs libstrophe on a thread of its own (libstrophe has no
// libevent integration, and its DNS SRV lookup at connect is blocking: that
// thread is the only one that waits for it). Requests come in from any thread
// through a mutex-protected queue; results go out through a callback that is
// called on the XMPP thread -- a caller on an event loop posts it back with a
// loop::Executor. The client keeps itself logged in: when the connection
// drops or the login fails it tries again with a growing delay.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/config/config.h"

namespace luacs::connreq {

enum class XmppOutcome {
  kAnswered,     // the device answered the IQ with a result: it will call in
  kOffline,      // service-unavailable and the like: no such device online
  kAuthFailed,   // not-authorized: the device rejected the username/password
  kRefused,      // another error from the device or the server (reason says which)
  kTimedOut,     // no answer within [xmpp] timeout
  kUnavailable,  // luacs is not logged in to the XMPP server (reason says why)
  kInvalid,      // the JID or credentials cannot be sent (not a JID, too long)
};

// "answered", "offline", "auth_failed", "refused", "timed_out",
// "unavailable", "invalid": stable names for logs, the API and metrics.
std::string_view outcome_name(XmppOutcome outcome);

struct XmppResult {
  XmppOutcome outcome = XmppOutcome::kUnavailable;
  std::string reason;  // for people; never holds a password
};

struct XmppSettings {
  std::string jid;       // luacs' account; empty = the client is off
  std::string password;  // never logged
  std::string server;    // host[:port]; empty = from the JID's domain
  config::XmppTls tls = config::XmppTls::kRequired;
  std::chrono::milliseconds timeout{5'000};  // per connection request
  // Delay before the first retry after a drop or a failed login, doubled
  // after each failure up to reconnect_max.
  std::chrono::milliseconds reconnect_min{1'000};
  std::chrono::milliseconds reconnect_max{60'000};
  size_t max_pending = 10'000;  // requests queued or awaiting an answer; more -> kUnavailable

  static XmppSettings from(const config::Config& cfg);
};

using XmppDone = std::function<void(const XmppResult&)>;

class XmppClient {
 public:
  // Starts the XMPP thread, which logs in at once. Throws
  // std::invalid_argument when the settings are unusable (no JID).
  explicit XmppClient(XmppSettings settings);
  // Logs out and joins the thread; requests still pending get kUnavailable.
  ~XmppClient();
  XmppClient(const XmppClient&) = delete;
  XmppClient& operator=(const XmppClient&) = delete;

  // Any thread. Sends <iq type="get" to="device_jid"><connectionRequest
  // xmlns="urn:broadband-forum-org:cwmp:xmppConnReq-1-0"> with the
  // device's ConnectionRequestUsername/Password. `done` is called exactly
  // once: on the XMPP thread, or, for a request refused before it is queued
  // (kInvalid, too many pending), on the caller's thread before this returns.
  void connection_request(std::string device_jid, std::string username, std::string password,
                          XmppDone done);

  bool logged_in() const;  // any thread
  // Why the client is not logged in ("" while it is); any thread.
  std::string status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A device JID luacs will address: user@domain/resource or user@domain,
// printable, no blanks, at most 3071 bytes.
bool is_device_jid(std::string_view jid);

}  // namespace luacs::connreq
