// The session driver: one per live CWMP session, the one place where a
// session, the policy and the device's tasks meet.
//
// It owns the pure session engine (cwmp::Session) and the policy's side of
// the session (lua::Run), runs the tasks queued for the device after the
// policy's hooks, and assembles what the session changed
// (device::SessionResult) together with its log line. It does no I/O: the
// host -- a worker thread of core/server, or the policy test harness with
// a simulated CPE -- feeds it parsed messages, sends the replies it
// returns, and commits what it says must be committed before a reply.
//
// Thread: a driver belongs to the thread of its host and is never shared.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/cwmp/session.h"
#include "core/device/device.h"
#include "core/soap/message.h"
#include "lua/policy.h"

namespace luacs::session {

// What a host lends every driver it runs (owned by the host, outliving the
// drivers).
struct Services {
  lua::Engine* engine = nullptr;  // the thread's policy engine; null: no policy
  // A Download or Upload was sent, so that its TransferComplete finds it
  // (the store writes it behind); may be empty.
  std::function<void(device::Transfer)> transfer_sent;
  // A SetParameterValues set the device's ConnectionRequestUsername/Password
  // and/or STUNUsername/Password. A CPE reads them back empty, so luacs
  // remembers what it wrote (core/connreq); may be empty.
  std::function<void(const std::string& device_id, device::ConnectionRequestSecrets secrets)>
      connection_request_credentials_set;
};

// Where the session comes from.
struct Origin {
  std::string peer;  // "192.0.2.7:4711"
  std::string host;  // the Host header of the Inform (file URLs)
  std::string auth;  // how the CPE authenticated ("challenge>digest", "off", ...)
  // The client certificate the device was admitted with (TLS), stored with
  // the session's result.
  std::optional<device::ClientCertificate> client_certificate;
};

// A reply, and what must be committed before it is sent.
struct Turn {
  cwmp::Reply reply;
  // A transfer result (TransferComplete, AutonomousTransferComplete): the
  // CPE keeps it, and retries, until it is acknowledged, so it is made
  // durable first. Not committed: no reply (the CPE sends it again).
  std::optional<device::Transfer> commit_first;
};

// A finished session: its log line and its result for the store.
struct Outcome {
  std::string log_line;  // "session device=... result=completed" (empty unless asked)
  device::SessionResult result;
  // The result holds what must never be lost (tags, faults, task results):
  // the session's last reply (its 204) waits for the commit.
  bool durable = false;
};

class Driver final : private cwmp::SessionHandler {
 public:
  Driver(std::string id, cwmp::SessionLimits limits, const Services& services, Origin origin,
         cwmp::Clock::time_point now);
  ~Driver() override;
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // The device as stored before this session (null or empty: a new device),
  // before its Inform is handled.
  void set_device(std::shared_ptr<const device::Device> d) { device_ = std::move(d); }

  // The next CPE message (by value: an Inform's parameters move into the session).
  Turn handle(soap::Envelope msg, cwmp::Clock::time_point now);
  // A message that could not be parsed: 400, and the session ends.
  cwmp::Reply handle_malformed(std::string_view reason, cwmp::Clock::time_point now);
  // Ends the session now (timeout, the CPE went away, shutdown).
  void abort(cwmp::EndReason why, std::string_view detail) { session_->abort(why, detail); }

  // Once ended: the result and (when `with_line`) the log line, from one
  // walk over the session's RPC records. Releases the policy's run and the
  // device snapshot first, so a cached device nobody else holds can be
  // updated in place. Call once.
  Outcome finish(bool with_line);

  const cwmp::Session& session() const { return *session_; }
  const std::string& id() const { return session_->id(); }
  const std::string& device_id() const { return session_->device_id(); }
  bool ended() const { return session_->ended(); }
  bool expired(cwmp::Clock::time_point now) const { return session_->expired(now); }
  const Origin& origin() const { return origin_; }
  // The policy generation the session runs (0: none).
  uint64_t policy_generation() const { return run_ ? run_->generation() : 0; }

 private:
  void on_inform(cwmp::Session& s) override;
  void on_cpe_request(cwmp::Session& s, const soap::Body& b) override;
  void on_acs_turn(cwmp::Session& s) override;
  void on_rpc_done(cwmp::Session& s, const soap::Body& request, const cwmp::RpcOutcome& o) override;
  void remember_credentials(cwmp::Session& s, const soap::SetParameterValues& spv);
  void on_end(cwmp::Session& s) override;

  // Runs one queued task; true when it waits for the CPE (an RPC is queued).
  bool run_task(const device::Task& t);
  void fail(const device::Task& t, const std::string& why);

  const Services& services_;
  Origin origin_;
  std::shared_ptr<const device::Device> device_;
  device::SessionResult result_;
  size_t next_task_ = 0;  // in device_->pending_tasks
  std::unique_ptr<cwmp::Session> session_;
  std::unique_ptr<lua::Run> run_;  // borrows session_ and result_
};

}  // namespace luacs::session
