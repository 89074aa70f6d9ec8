// The CWMP session engine: one object per live session, no I/O.
//
// The connection layer hands it each parsed CPE message (Envelope) and sends
// back the Reply it returns; it never touches a socket, a database or Lua, so a
// whole session can be driven from a unit test with messages in and replies
// out. The flow is TR-069's (see docs/cwmp-protocol.md §3):
//
//   Inform -> InformResponse
//   CPE requests (TransferComplete, GetRPCMethods, ...) -> their responses
//   empty POST -> the ACS takes the turn: queued RPCs one at a time, each
//                 answer (or CPE fault) handed to whoever queued it
//   nothing left -> 204, the session ends
//
// Whoever wants the CPE to do something queues an ACS request with a callback
// (queue()); the SessionHandler is told about the Inform, CPE requests and the
// ACS turn, and may queue RPCs from any of those calls or from a callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/soap/message.h"

namespace luacs::cwmp {

using Clock = std::chrono::steady_clock;

struct SessionLimits {
  unsigned max_rpcs = 255;                             // ACS requests per session
  unsigned max_cpe_requests = 64;                      // CPE requests per session
  std::chrono::milliseconds session_timeout{300'000};  // whole session
  std::chrono::milliseconds idle_timeout{30'000};      // between two CPE messages
};

// What became of an RPC the ACS queued.
struct RpcOutcome {
  enum class Kind {
    kResponse,  // the CPE answered; `response` holds it
    kCpeFault,  // the CPE answered with a SOAP fault; `fault` holds it
    kError,     // no usable answer: `why` and `detail` say what happened
  };
  enum class Error {
    kNone,
    kInvalidResponse,  // an answer that is not this request's response
    kNoResponse,       // an empty POST instead of the response
    kTimeout,          // the session timed out waiting for it
    kSessionEnded,     // the session ended before it was answered
    kRpcLimit,         // over [limits] rpcs_per_session
  };
  Kind kind = Kind::kError;
  soap::Body response;
  soap::Fault fault;
  Error why = Error::kNone;
  std::string detail;  // for kError: what exactly ("cwmp:ID 7 does not match 8")
  bool ok() const { return kind == Kind::kResponse; }
  // For kError: "invalid_response: <detail>", "timeout", ... (logs, JSON).
  std::string error() const;
  static RpcOutcome failed(Error why, std::string detail = {});
};
// "invalid_response", "no_response", "timeout", "session_ended", "rpc_limit".
std::string_view to_string(RpcOutcome::Error e);
using RpcCallback = std::function<void(const RpcOutcome&)>;

// What to send back on the HTTP connection.
struct Reply {
  int status = 200;    // 200 (envelope in body), 204 (session over), 400, 500 (SOAP fault)
  std::string body;    // SOAP envelope; for 400 a short plain-text reason
  bool close = false;  // close the connection after this reply
};

enum class SessionState {
  kAwaitInform,    // created, nothing received yet
  kCpeTurn,        // InformResponse sent; the CPE may send requests
  kAwaitResponse,  // an ACS request is out; waiting for its response
  kEnded,
};

// How a session ended, for the session log line.
enum class EndReason {
  kNone,        // still live
  kCompleted,   // 204 sent
  kRefused,     // the Inform was refused (fault)
  kBadRequest,  // protocol violation (400)
  kTimeout,
  kAborted,  // aborted by the server (shutdown, connection lost for good)
};
std::string_view to_string(EndReason r);

class Session;

// The 400 replies, worded once for the session engine and the connection
// that has no session yet: a body that could not be parsed, and a message
// that does not fit the session's state. Both close the connection.
Reply malformed_reply(std::string_view reason);
Reply bad_state_reply(std::string_view why);
// Whether an Inform's DeviceId names a device: a device id needs its OUI and
// SerialNumber (refused with fault 8003 otherwise).
bool names_device(const soap::DeviceIdStruct& id);

// The session driver (core/session) reacts to the session through this.
// Every method may call session.queue(...).
class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // The Inform has been accepted (identity checked); called before the
  // InformResponse is built, so set_hold_requests() still applies to it.
  virtual void on_inform(Session&) {}
  // A CPE request other than Inform has been received and is being answered.
  virtual void on_cpe_request(Session&, const soap::Body&) {}
  // The ACS has the turn and nothing is queued. Queue more, or leave the
  // queue empty to end the session. Called again each time the queue runs dry.
  virtual void on_acs_turn(Session&) {}
  // An ACS request has been answered (or given up); called for every RPC,
  // before the callback of whoever queued it. Lets the server remember the
  // values a session read or set, whoever asked.
  virtual void on_rpc_done(Session&, const soap::Body& /*request*/, const RpcOutcome&) {}
  // The session is over (any reason). Called once.
  virtual void on_end(Session&) {}
};

// One line of the session summary: an RPC and what became of it.
struct RpcRecord {
  std::string method;
  std::string outcome;  // "ok", "fault 9005", "error timeout", ...
};

class Session {
 public:
  Session(std::string id, SessionLimits limits, SessionHandler* handler, Clock::time_point now);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  // The next CPE message (an empty POST is an Envelope whose body is Empty).
  // Taken by value: an Inform's parameters move into the session.
  Reply handle(soap::Envelope msg, Clock::time_point now);

  // The CPE sent something that could not be parsed: 400 naming the reason,
  // and the session ends (the CPE retries it from a new Inform).
  Reply handle_malformed(std::string_view reason, Clock::time_point now);

  // Queue an ACS request (a body whose role is kAcsRequest). The callback is
  // always called exactly once, also when the session ends first.
  void queue(soap::Body request, RpcCallback done);

  // Send HoldRequests=1 on the InformResponse and on ACS requests, so the CPE
  // holds its own requests until the ACS has finished.
  void set_hold_requests(bool hold) { hold_requests_ = hold; }

  // When the session must be given up for lack of activity (idle or total).
  Clock::time_point deadline() const;
  bool expired(Clock::time_point now) const { return now >= deadline(); }

  // End the session now: pending and queued RPCs get kError(reason).
  void abort(EndReason why, std::string_view reason);

  const std::string& id() const { return id_; }
  SessionState state() const { return state_; }
  EndReason end_reason() const { return end_reason_; }
  const std::string& end_detail() const { return end_detail_; }
  bool ended() const { return state_ == SessionState::kEnded; }

  // Valid once the Inform has been accepted.
  const std::string& device_id() const { return device_id_; }
  const soap::Inform& inform() const { return inform_; }
  const std::string& cwmp_ns() const { return cwmp_ns_; }
  const std::string& cwmp_version() const { return cwmp_version_; }
  Clock::time_point started() const { return started_; }
  const std::vector<RpcRecord>& rpcs() const { return rpcs_; }
  unsigned cpe_requests() const { return cpe_requests_; }
  size_t queued() const { return queue_.size(); }

 private:
  struct Pending {
    soap::Body request;
    RpcCallback done;
  };

  Reply on_inform(soap::Envelope& msg);
  Reply on_cpe_turn(const soap::Envelope& msg);
  Reply on_response(const soap::Envelope& msg);
  Reply answer_cpe_request(const soap::Envelope& msg);
  // The ACS has the turn: send the next queued request or end with 204.
  Reply take_turn();
  Reply envelope_reply(std::string_view id, soap::Body body, int status = 200);
  Reply too_many_cpe_requests();
  Reply bad_state(std::string_view why);
  void finish(Pending& p, RpcOutcome outcome);
  void end(EndReason why, std::string_view detail);

  std::string id_;
  SessionLimits limits_;
  SessionHandler* handler_;
  SessionState state_ = SessionState::kAwaitInform;
  EndReason end_reason_ = EndReason::kNone;
  std::string end_detail_;
  bool hold_requests_ = false;

  Clock::time_point started_;
  Clock::time_point last_activity_;

  std::string device_id_;
  soap::Inform inform_;
  std::string cwmp_ns_;
  std::string cwmp_version_;  // negotiated with a CWMP 1.4 CPE, "" otherwise

  std::deque<Pending> queue_;
  Pending in_flight_;
  std::string in_flight_id_;
  std::string in_flight_name_;
  unsigned rpcs_sent_ = 0;
  uint64_t next_request_id_ = 1;
  unsigned cpe_requests_ = 0;
  std::vector<RpcRecord> rpcs_;
};

}  // namespace luacs::cwmp
