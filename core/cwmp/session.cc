#include "core/cwmp/session.h"

#include <algorithm>

#include "core/cwmp/device_id.h"
#include "core/soap/writer.h"

namespace luacs::cwmp {
namespace {

// What we tell a CPE that asks us GetRPCMethods.
const std::vector<std::string> kAcsMethods = {
    "Inform",          "GetRPCMethods", "TransferComplete",      "AutonomousTransferComplete",
    "RequestDownload", "Kicked",        "DUStateChangeComplete", "AutonomousDUStateChangeComplete",
};

// CWMP versions we speak, lowest first.
constexpr std::string_view kVersions[] = {"1.0", "1.1", "1.2", "1.3", "1.4"};

// Highest version in the CPE's comma-separated list that we also speak, or "".
std::string pick_version(std::string_view supported) {
  std::string best;
  while (!supported.empty()) {
    size_t comma = supported.find(',');
    std::string_view v = supported.substr(0, comma);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    for (auto ours : kVersions)
      if (v == ours && (best.empty() || v > best)) best = std::string(v);
    if (comma == std::string_view::npos) break;
    supported.remove_prefix(comma + 1);
  }
  return best;
}

soap::Fault acs_fault(uint32_t code, std::string_view text) {
  soap::Fault f;
  f.faultcode = code == 8003 || code == 8005 ? "Client" : "Server";
  f.faultstring = "CWMP fault";
  f.code = code;
  f.string = std::string(text);
  return f;
}

}  // namespace

std::string_view to_string(EndReason r) {
  switch (r) {
    case EndReason::kNone:
      return "live";
    case EndReason::kCompleted:
      return "completed";
    case EndReason::kRefused:
      return "refused";
    case EndReason::kBadRequest:
      return "bad_request";
    case EndReason::kTimeout:
      return "timeout";
    case EndReason::kAborted:
      return "aborted";
  }
  return "?";
}

std::string_view to_string(RpcOutcome::Error e) {
  switch (e) {
    case RpcOutcome::Error::kNone:
      return "none";
    case RpcOutcome::Error::kInvalidResponse:
      return "invalid_response";
    case RpcOutcome::Error::kNoResponse:
      return "no_response";
    case RpcOutcome::Error::kTimeout:
      return "timeout";
    case RpcOutcome::Error::kSessionEnded:
      return "session_ended";
    case RpcOutcome::Error::kRpcLimit:
      return "rpc_limit";
  }
  return "?";
}

std::string RpcOutcome::error() const {
  if (kind != Kind::kError) return {};
  std::string s(to_string(why));
  if (!detail.empty()) s += ": " + detail;
  return s;
}

RpcOutcome RpcOutcome::failed(Error why, std::string detail) {
  RpcOutcome o;
  o.kind = Kind::kError;
  o.why = why;
  o.detail = std::move(detail);
  return o;
}

Session::Session(std::string id, SessionLimits limits, SessionHandler* handler,
                 Clock::time_point now)
    : id_(std::move(id)), limits_(limits), handler_(handler), started_(now), last_activity_(now) {}

Session::~Session() {
  if (!ended()) abort(EndReason::kAborted, "session destroyed");
}

Clock::time_point Session::deadline() const {
  return std::min(started_ + limits_.session_timeout, last_activity_ + limits_.idle_timeout);
}

void Session::queue(soap::Body request, RpcCallback done) {
  if (ended()) {
    RpcOutcome o =
        RpcOutcome::failed(RpcOutcome::Error::kSessionEnded, std::string(to_string(end_reason_)));
    if (done) done(o);
    return;
  }
  queue_.push_back(Pending{std::move(request), std::move(done)});
}

Reply Session::handle(soap::Envelope msg, Clock::time_point now) {
  last_activity_ = now;
  switch (state_) {
    case SessionState::kAwaitInform:
      if (!std::holds_alternative<soap::Inform>(msg.body))
        return bad_state("a session must start with an Inform");
      return on_inform(msg);
    case SessionState::kCpeTurn:
      return on_cpe_turn(msg);
    case SessionState::kAwaitResponse:
      return on_response(msg);
    case SessionState::kEnded:
      break;
  }
  Reply r;
  r.status = 400;
  r.body = "Session already ended";
  r.close = true;
  return r;
}

Reply malformed_reply(std::string_view reason) {
  Reply r;
  r.status = 400;
  r.body = "Malformed request: ";
  r.body += reason;
  r.close = true;
  return r;
}

Reply bad_state_reply(std::string_view why) {
  Reply r;
  r.status = 400;
  r.body = "Bad session state: ";
  r.body += why;
  r.close = true;
  return r;
}

bool names_device(const soap::DeviceIdStruct& id) {
  return !id.oui.empty() && !id.serial_number.empty();
}

Reply Session::handle_malformed(std::string_view reason, Clock::time_point now) {
  last_activity_ = now;
  Reply r = malformed_reply(reason);
  end(EndReason::kBadRequest, r.body);
  return r;
}

Reply Session::on_inform(soap::Envelope& msg) {
  auto& inform = std::get<soap::Inform>(msg.body);
  cwmp_ns_ = msg.cwmp_ns;
  std::string_view id = msg.header.id ? std::string_view(*msg.header.id) : std::string_view();

  if (!names_device(inform.device_id)) {
    Reply r = envelope_reply(id, acs_fault(8003, "Inform DeviceId lacks OUI or SerialNumber"), 500);
    r.close = true;
    end(EndReason::kRefused, "Inform without OUI or SerialNumber");
    return r;
  }

  if (!msg.header.supported_cwmp_versions.empty()) {
    cwmp_version_ = pick_version(msg.header.supported_cwmp_versions);
    if (cwmp_version_.empty()) {
      Reply r = envelope_reply(id, acs_fault(8006, "ACS version incompatible with CPE"), 500);
      r.close = true;
      end(EndReason::kRefused, "no common CWMP version in " + msg.header.supported_cwmp_versions);
      return r;
    }
  }

  inform_ = std::move(inform);
  device_id_ = cwmp::device_id(inform_.device_id);
  state_ = SessionState::kCpeTurn;
  if (handler_) handler_->on_inform(*this);

  soap::Envelope out;
  out.cwmp_ns = cwmp_ns_;
  out.header.id = std::string(id);
  if (hold_requests_) out.header.hold_requests = true;
  if (!cwmp_version_.empty()) out.header.use_cwmp_version = cwmp_version_;
  out.body = soap::InformResponse{};
  Reply r;
  soap::write(r.body, out);
  return r;
}

Reply Session::on_cpe_turn(const soap::Envelope& msg) {
  switch (soap::role_of(msg.body)) {
    case soap::Role::kEmpty:
      return take_turn();
    case soap::Role::kCpeRequest:
      if (std::holds_alternative<soap::Inform>(msg.body))
        return bad_state("Inform inside a session");
      return answer_cpe_request(msg);
    case soap::Role::kFault:
    case soap::Role::kCpeResponse:
      return bad_state("a response arrived but no ACS request is pending");
    case soap::Role::kUnknown:
    case soap::Role::kAcsRequest:
    case soap::Role::kAcsResponse:
      break;
  }
  // A method we do not implement (or one only an ACS would send).
  if (cpe_requests_ >= limits_.max_cpe_requests) return too_many_cpe_requests();
  ++cpe_requests_;
  // The name echoed is the CPE's own text: only its beginning (a reply may
  // not grow with a name as long as the request allows).
  constexpr size_t kEchoed = 64;
  std::string_view name = soap::method_name(msg.body);
  std::string text = "Method not supported: ";
  if (name.size() <= kEchoed) {
    text += name;
  } else {
    size_t cut = kEchoed;
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
    text += name.substr(0, cut);
    text += "...";
  }
  return envelope_reply(msg.header.id ? *msg.header.id : std::string(), acs_fault(8000, text), 500);
}

Reply Session::answer_cpe_request(const soap::Envelope& msg) {
  if (cpe_requests_ >= limits_.max_cpe_requests) return too_many_cpe_requests();
  ++cpe_requests_;
  if (handler_) handler_->on_cpe_request(*this, msg.body);
  soap::Body response;
  if (std::holds_alternative<soap::TransferComplete>(msg.body)) {
    response = soap::TransferCompleteResponse{};
  } else if (std::holds_alternative<soap::AutonomousTransferComplete>(msg.body)) {
    response = soap::AutonomousTransferCompleteResponse{};
  } else if (std::holds_alternative<soap::GetRPCMethods>(msg.body)) {
    response = soap::GetRPCMethodsResponse{kAcsMethods};
  } else if (std::holds_alternative<soap::RequestDownload>(msg.body)) {
    response = soap::RequestDownloadResponse{};
  } else if (auto* k = std::get_if<soap::Kicked>(&msg.body)) {
    response = soap::KickedResponse{k->next};
  } else if (std::holds_alternative<soap::DUStateChangeComplete>(msg.body)) {
    response = soap::DUStateChangeCompleteResponse{};
  } else {
    response = soap::AutonomousDUStateChangeCompleteResponse{};
  }
  return envelope_reply(msg.header.id ? *msg.header.id : std::string(), std::move(response));
}

Reply Session::on_response(const soap::Envelope& msg) {
  const auto& body = msg.body;
  soap::Role role = soap::role_of(body);

  // The CPE must answer the request it was given before anything else.
  if (role == soap::Role::kCpeRequest && !std::holds_alternative<soap::GetRPCMethods>(body)) {
    if (std::holds_alternative<soap::Inform>(body)) return bad_state("Inform inside a session");
    return bad_state("a CPE request arrived while an ACS request was pending");
  }

  RpcOutcome outcome;
  if (msg.header.id && !msg.header.id->empty() && *msg.header.id != in_flight_id_) {
    outcome = RpcOutcome::failed(RpcOutcome::Error::kInvalidResponse,
                                 "cwmp:ID " + *msg.header.id + " does not match " + in_flight_id_);
  } else if (role == soap::Role::kFault) {
    outcome.kind = RpcOutcome::Kind::kCpeFault;
    outcome.fault = std::get<soap::Fault>(body);
  } else if (role == soap::Role::kEmpty) {
    outcome = RpcOutcome::failed(RpcOutcome::Error::kNoResponse,
                                 "empty POST instead of " + in_flight_name_ + "Response");
  } else if (soap::method_name(body) == soap::response_name(in_flight_name_)) {
    outcome.kind = RpcOutcome::Kind::kResponse;
    outcome.response = body;
  } else {
    outcome = RpcOutcome::failed(
        RpcOutcome::Error::kInvalidResponse,
        "expected " + in_flight_name_ + "Response, got " + std::string(soap::method_name(body)));
  }

  state_ = SessionState::kCpeTurn;
  Pending done = std::move(in_flight_);
  in_flight_ = Pending{};
  finish(done, std::move(outcome));
  if (ended()) {
    Reply r;
    r.status = 204;
    r.close = true;
    return r;
  }
  return take_turn();
}

Reply Session::take_turn() {
  if (queue_.empty() && handler_) handler_->on_acs_turn(*this);
  if (queue_.empty()) {
    end(EndReason::kCompleted, "");
    Reply r;
    r.status = 204;
    return r;
  }
  if (rpcs_sent_ >= limits_.max_rpcs) {
    // Everything still queued fails; the session ends normally.
    while (!queue_.empty()) {
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      RpcOutcome o = RpcOutcome::failed(
          RpcOutcome::Error::kRpcLimit,
          "more than " + std::to_string(limits_.max_rpcs) + " ACS requests in one session");
      finish(p, std::move(o));
    }
    end(EndReason::kCompleted, "rpc limit reached");
    Reply r;
    r.status = 204;
    return r;
  }

  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  ++rpcs_sent_;
  in_flight_name_ = std::string(soap::method_name(in_flight_.request));
  in_flight_id_ = "luacs-" + std::to_string(next_request_id_++);
  state_ = SessionState::kAwaitResponse;

  soap::Envelope out;
  out.cwmp_ns = cwmp_ns_;
  out.header.id = in_flight_id_;
  if (hold_requests_) out.header.hold_requests = true;
  out.body = in_flight_.request;
  Reply r;
  soap::write(r.body, out);
  return r;
}

Reply Session::envelope_reply(std::string_view id, soap::Body body, int status) {
  soap::Envelope out;
  out.cwmp_ns = cwmp_ns_.empty() ? std::string(soap::kCwmpNs10) : cwmp_ns_;
  out.header.id = std::string(id);
  out.body = std::move(body);
  Reply r;
  r.status = status;
  soap::write(r.body, out);
  return r;
}

// A CPE that keeps the session going with requests of its own (each one
// answered, some echoing what it sent) ends it: 400 and a close.
Reply Session::too_many_cpe_requests() {
  return bad_state("more than " + std::to_string(limits_.max_cpe_requests) +
                   " CPE requests in one session");
}

Reply Session::bad_state(std::string_view why) {
  Reply r = bad_state_reply(why);
  end(EndReason::kBadRequest, r.body);
  return r;
}

void Session::finish(Pending& p, RpcOutcome outcome) {
  RpcRecord rec;
  rec.method = std::string(soap::method_name(p.request));
  switch (outcome.kind) {
    case RpcOutcome::Kind::kResponse:
      rec.outcome = "ok";
      break;
    case RpcOutcome::Kind::kCpeFault:
      rec.outcome = "fault " + std::to_string(outcome.fault.code);
      break;
    case RpcOutcome::Kind::kError:
      rec.outcome = "error " + std::string(to_string(outcome.why));
      break;
  }
  rpcs_.push_back(std::move(rec));
  if (handler_) handler_->on_rpc_done(*this, p.request, outcome);
  if (p.done) {
    // The callback may queue more work; move it out first so it runs once.
    RpcCallback cb = std::move(p.done);
    p.done = nullptr;
    cb(outcome);
  }
}

void Session::end(EndReason why, std::string_view detail) {
  if (ended()) return;
  bool awaiting = state_ == SessionState::kAwaitResponse;
  state_ = SessionState::kEnded;
  end_reason_ = why;
  end_detail_ = std::string(detail);
  const RpcOutcome ended_first =
      RpcOutcome::failed(RpcOutcome::Error::kSessionEnded, std::string(to_string(why)));
  if (awaiting) {
    RpcOutcome o =
        why == EndReason::kTimeout ? RpcOutcome::failed(RpcOutcome::Error::kTimeout) : ended_first;
    Pending p = std::move(in_flight_);
    in_flight_ = Pending{};
    finish(p, std::move(o));
  }
  while (!queue_.empty()) {
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    finish(p, ended_first);
  }
  if (handler_) handler_->on_end(*this);
}

void Session::abort(EndReason why, std::string_view reason) {
  end(why, reason);
}

}  // namespace luacs::cwmp
