#include "core/session/driver.h"

#include <algorithm>
#include <iterator>

#include <nlohmann/json.hpp>

#include "core/cwmp/device_id.h"
#include "core/session/task_rpc.h"
#include "core/util/json.h"
#include "core/util/log.h"
#include "core/util/net.h"

namespace luacs::session {
namespace {

lua::TransferInfo transfer_info(const soap::TransferComplete& tc) {
  lua::TransferInfo t;
  t.command_key = tc.command_key;
  t.fault_code = tc.fault.code;
  t.fault_string = tc.fault.string;
  t.start_time = tc.start_time;
  t.complete_time = tc.complete_time;
  return t;
}

lua::TransferInfo transfer_info(const soap::AutonomousTransferComplete& atc) {
  lua::TransferInfo t;
  t.autonomous = true;
  t.fault_code = atc.fault.code;
  t.fault_string = atc.fault.string;
  t.start_time = atc.start_time;
  t.complete_time = atc.complete_time;
  t.is_download = atc.is_download;
  t.file_type = atc.file_type;
  t.transfer_url = atc.transfer_url;
  t.target_file_name = atc.target_file_name;
  t.file_size = atc.file_size;
  return t;
}

// A JSON string of `text`: most values are plain ASCII and are copied as
// they are; the rest go through the escaper (which also replaces invalid
// UTF-8).
void json_string(std::string& out, std::string_view text) {
  bool plain = true;
  for (unsigned char c : text) plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  if (plain) {
    out += '"';
    out += text;
    out += '"';
  } else {
    out += util::json_text(std::string(text));
  }
}

}  // namespace

Driver::Driver(std::string id, cwmp::SessionLimits limits, const Services& services, Origin origin,
               cwmp::Clock::time_point now)
    : services_(services),
      origin_(std::move(origin)),
      session_(std::make_unique<cwmp::Session>(std::move(id), limits,
                                               static_cast<cwmp::SessionHandler*>(this), now)) {
  result_.inform_time = std::chrono::system_clock::now();
}

Driver::~Driver() {
  // The session's callbacks reach into the run and the result: end it (and
  // the run) while both are still here.
  if (!session_->ended()) session_->abort(cwmp::EndReason::kAborted, "ended by the server");
  run_.reset();
  session_.reset();
}

Turn Driver::handle(soap::Envelope msg, cwmp::Clock::time_point now) {
  Turn t;
  if (!std::holds_alternative<soap::TransferComplete>(msg.body) &&
      !std::holds_alternative<soap::AutonomousTransferComplete>(msg.body)) {
    t.reply = session_->handle(std::move(msg), now);  // an Inform's parameters move on
    return t;
  }
  t.reply = session_->handle(msg, now);  // a copy: the transfer is read below
  if (t.reply.status != 200) return t;
  const auto* tc = std::get_if<soap::TransferComplete>(&msg.body);
  const auto* atc = std::get_if<soap::AutonomousTransferComplete>(&msg.body);
  if (!tc && !atc) return t;
  device::Transfer& x = t.commit_first.emplace();
  x.device_id = session_->device_id();
  if (tc) {
    x.command_key = tc->command_key;
    x.fault_code = tc->fault.code;
    x.fault_string = tc->fault.string;
    x.start_time = tc->start_time;
    x.complete_time = tc->complete_time;
  } else {
    x.autonomous = true;
    x.is_download = atc->is_download;
    x.file_type = atc->file_type;
    x.url = atc->transfer_url;
    x.fault_code = atc->fault.code;
    x.fault_string = atc->fault.string;
    x.start_time = atc->start_time;
    x.complete_time = atc->complete_time;
  }
  return t;
}

cwmp::Reply Driver::handle_malformed(std::string_view reason, cwmp::Clock::time_point now) {
  return session_->handle_malformed(reason, now);
}

void Driver::on_inform(cwmp::Session& s) {
  if (!services_.engine) return;
  lua::RunContext ctx;
  ctx.session = &s;
  ctx.device = device_;
  ctx.result = &result_;
  ctx.host = origin_.host;
  ctx.peer = origin_.peer;
  run_ = services_.engine->start(std::move(ctx));
}

void Driver::on_cpe_request(cwmp::Session&, const soap::Body& b) {
  if (!run_) return;
  if (const auto* tc = std::get_if<soap::TransferComplete>(&b))
    run_->transfer_complete(transfer_info(*tc));
  else if (const auto* atc = std::get_if<soap::AutonomousTransferComplete>(&b))
    run_->transfer_complete(transfer_info(*atc));
}

// The policy's hooks first, then the device's tasks in the order they were
// queued, one at a time.
void Driver::on_acs_turn(cwmp::Session&) {
  if (run_ && run_->advance() == lua::Run::Step::kWaiting) return;
  if (!device_) return;
  const auto& tasks = device_->pending_tasks;
  while (next_task_ < tasks.size())
    if (run_task(tasks[next_task_++])) return;
}

// Whoever asked, what the session read or set is kept with the device.
void Driver::on_rpc_done(cwmp::Session& s, const soap::Body& request, const cwmp::RpcOutcome& o) {
  if (!o.ok()) return;
  auto now = std::chrono::system_clock::now();
  auto& params = result_.parameters;
  if (auto* gpv = std::get_if<soap::GetParameterValuesResponse>(&o.response)) {
    for (const auto& p : gpv->parameters) params.emplace_back(p, now);
  } else if (auto* spv = std::get_if<soap::SetParameterValues>(&request)) {
    for (const auto& p : spv->parameters) params.emplace_back(p, now);
    if (services_.connection_request_credentials_set) remember_credentials(s, *spv);
  }
  if (!services_.transfer_sent) return;
  auto sent = [&](const auto& rpc, bool is_download) {
    device::Transfer t;
    t.device_id = s.device_id();
    t.command_key = rpc.command_key;
    t.is_download = is_download;
    t.file_type = rpc.file_type;
    t.url = rpc.url;
    services_.transfer_sent(std::move(t));
  };
  if (auto* d = std::get_if<soap::Download>(&request)) sent(*d, true);
  if (auto* u = std::get_if<soap::Upload>(&request)) sent(*u, false);
}

// ManagementServer.ConnectionRequestUsername / Password and STUNUsername /
// STUNPassword (either data model root) set by a SetParameterValues the CPE
// accepted.
void Driver::remember_credentials(cwmp::Session& s, const soap::SetParameterValues& spv) {
  const auto ends = [](std::string_view name, std::string_view tail) {
    return name.size() > tail.size() && name.substr(name.size() - tail.size()) == tail &&
           name.find('.') == name.size() - tail.size();
  };
  device::ConnectionRequestSecrets secrets;
  for (const auto& p : spv.parameters) {
    if (ends(p.name, ".ManagementServer.ConnectionRequestUsername")) secrets.username = p.value;
    if (ends(p.name, ".ManagementServer.ConnectionRequestPassword")) secrets.password = p.value;
    if (ends(p.name, ".ManagementServer.STUNUsername")) secrets.stun_username = p.value;
    if (ends(p.name, ".ManagementServer.STUNPassword")) secrets.stun_password = p.value;
  }
  if (secrets.any())
    services_.connection_request_credentials_set(s.device_id(), std::move(secrets));
}

void Driver::on_end(cwmp::Session&) {
  if (run_) run_->end();
}

bool Driver::run_task(const device::Task& t) {
  auto& results = result_.task_results;
  if (t.expires && *t.expires <= std::chrono::system_clock::now()) {
    results.push_back({t.id, false, R"({"error":"expired"})"});
    return false;
  }
  std::string error;
  if (t.name == "tag" || t.name == "untag") {
    std::string tag;
    try {
      tag = nlohmann::json::parse(t.args).value("tag", "");
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (tag.empty()) {
      fail(t, error.empty() ? "no tag given" : error);
      return false;
    }
    auto& to = t.name == "tag" ? result_.tags_added : result_.tags_removed;
    auto& from = t.name == "tag" ? result_.tags_removed : result_.tags_added;
    from.erase(std::remove(from.begin(), from.end(), tag), from.end());
    to.push_back(tag);
    results.push_back({t.id, true, "{}"});
    return false;
  }
  if (t.name.rfind("tasks.", 0) == 0) {
    if (!run_) {
      fail(t, "no policy is loaded to run " + t.name);
      return false;
    }
    run_->add_task(t.name.substr(6), t.args, [this, id = t.id](bool ok, std::string json) {
      result_.task_results.push_back({id, ok, std::move(json)});
    });
    return run_->advance() == lua::Run::Step::kWaiting;
  }
  auto rpc = task_rpc(t.name, t.args, &error);
  if (!rpc) {
    fail(t, error);
    return false;
  }
  // A task whose RPC got no answer (timeout, session ended) stays pending
  // and runs again next session; an answer or a CPE fault settles it.
  session_->queue(std::move(*rpc), [this, id = t.id](const cwmp::RpcOutcome& o) {
    if (o.kind == cwmp::RpcOutcome::Kind::kError) return;
    std::string json = outcome_json(o);
    result_.task_results.push_back({id, o.ok(), json});
    if (!o.ok())
      result_.faults.push_back({session_->device_id(), "task", o.fault.code, o.fault.string, json});
  });
  return true;
}

void Driver::fail(const device::Task& t, const std::string& why) {
  nlohmann::json j = {{"error", why}};
  std::string json = util::json_text(j);
  result_.task_results.push_back({t.id, false, json});
  result_.faults.push_back({t.device_id, "task", 0, "task '" + t.name + "': " + why, json});
}

Outcome Driver::finish(bool with_line) {
  Outcome out;
  const cwmp::Session& s = *session_;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cwmp::Clock::now() - s.started());

  // One walk over the RPC records for the log line and the summary JSON
  // ({"result", "detail", "cpe_requests", "rpcs": [[method, outcome]...],
  // "duration_ms"}); written by hand: this runs for every session.
  std::string& line = out.log_line;
  std::string& summary = result_.summary;
  if (with_line) {
    line = "session device=";
    line += s.device_id().empty() ? "-" : s.device_id();
    line += " peer=" + origin_.peer + " events=";
    std::string events;
    for (const auto& e : s.inform().events) {
      if (!events.empty()) events += ',';
      events += e.code;
      if (!e.command_key.empty()) events += "(" + e.command_key + ")";
    }
    line += log::quoted(events);
    line += " cpe_requests=" + std::to_string(s.cpe_requests()) + " rpcs=";
  }
  summary = "{\"result\": ";
  json_string(summary, cwmp::to_string(s.end_reason()));
  summary += ", \"detail\": ";
  json_string(summary, s.end_detail());
  summary += ", \"cpe_requests\": ";
  summary += std::to_string(s.cpe_requests());
  summary += ", \"rpcs\": [";
  std::string rpcs;  // the log line's
  bool first = true;
  for (const auto& r : s.rpcs()) {
    summary += first ? "[" : ", [";
    json_string(summary, r.method);
    summary += ", ";
    json_string(summary, r.outcome);
    summary += ']';
    if (with_line) {
      if (!first) rpcs += ',';
      rpcs += r.method + ":" + r.outcome;
    }
    first = false;
  }
  summary += "], \"duration_ms\": ";
  summary += std::to_string(ms.count());
  summary += '}';
  result_.summary_is_json = true;  // json_string escapes (and repairs UTF-8)
  if (with_line) {
    line += log::quoted(rpcs);
    line += " duration_ms=" + std::to_string(ms.count());
    line += " auth=" + (origin_.auth.empty() ? std::string("-") : origin_.auth);
    line += " result=";
    line += cwmp::to_string(s.end_reason());
    if (!s.end_detail().empty()) line += " detail=" + log::quoted(s.end_detail());
  }

  device::SessionResult& r = result_;
  const soap::Inform& in = s.inform();
  r.device_id = s.device_id();
  r.identity = in.device_id;
  r.data_model_root = cwmp::data_model_root(in);
  r.remote_address = util::address_of(origin_.peer);
  r.client_certificate = std::move(origin_.client_certificate);
  r.events = in.events;
  // The Inform's values first: values read later in the session win. An
  // Inform value the store already holds is not written again (its read_at
  // stays the time it was first seen so; last_inform says it still was): a
  // periodic Inform then rewrites no parameters at all.
  const device::Device* known = device_.get();
  std::vector<std::pair<soap::ParameterValue, device::Time>> params;
  params.reserve(in.parameters.size() + r.parameters.size());
  for (const auto& p : in.parameters) {
    if (known) {
      auto it = known->parameters.find(p.name);
      if (it != known->parameters.end() && it->second.value == p.value && it->second.type == p.type)
        continue;
    }
    params.emplace_back(p, r.inform_time);
  }
  std::move(r.parameters.begin(), r.parameters.end(), std::back_inserter(params));
  r.parameters = std::move(params);
  // The run and the snapshot go before the write: held by nobody else, the
  // cached device is then updated in place instead of copied.
  run_.reset();
  device_.reset();
  out.durable = !r.tags_added.empty() || !r.tags_removed.empty() || !r.faults.empty() ||
                !r.task_results.empty();
  out.result = std::move(r);
  return out;
}

}  // namespace luacs::session
