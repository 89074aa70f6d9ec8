#include "core/policytest/sim_session.h"

#include <stdexcept>

#include "core/cwmp/device_id.h"
#include "core/soap/reader.h"

namespace luacs::policytest {
namespace {

// The CPE's reply envelope to an ACS request.
soap::Envelope reply_to(const soap::Envelope& req, soap::Body body) {
  soap::Envelope e;
  e.cwmp_ns = req.cwmp_ns;
  e.header.id = req.header.id;
  e.body = std::move(body);
  return e;
}

}  // namespace

device::Device& SimDevice::edit() {
  auto copy =
      stored ? std::make_shared<device::Device>(*stored) : std::make_shared<device::Device>();
  stored = copy;
  return *copy;
}

size_t SimLog::count(const std::string& method) const {
  size_t n = 0;
  for (const auto& m : methods) n += m == method;
  return n;
}

SimLog run_session(const session::Services& services, SimDevice& d, const SimOptions& o) {
  SimLog log;
  auto now = cwmp::Clock::now();
  session::Origin origin;
  origin.peer = "192.0.2.7:4711";
  origin.host = "acs.test:7547";
  origin.auth = "off";
  session::Driver drv("test-session", {}, services, std::move(origin), now);
  soap::Envelope inform = sim::make_inform(d.model, d.serial, o.events, "2026-11-21T12:00:00Z");
  std::shared_ptr<const device::Device> before = d.stored;
  if (!o.tasks.empty()) {
    // Queued for this session only: apply_session below starts from the
    // device without them.
    auto with_tasks =
        d.stored ? std::make_shared<device::Device>(*d.stored) : std::make_shared<device::Device>();
    if (with_tasks->id.empty())
      with_tasks->id = cwmp::device_id(std::get<soap::Inform>(inform.body).device_id);
    int64_t id = 0;
    for (const auto& [fn, args] : o.tasks) {
      device::Task t;
      t.id = ++id;
      t.device_id = with_tasks->id;
      t.name = "tasks." + fn;
      t.args = args;
      with_tasks->pending_tasks.push_back(std::move(t));
    }
    before = std::move(with_tasks);
  }
  drv.set_device(std::move(before));

  cwmp::Reply r = drv.handle(inform, now).reply;
  if (r.status != 200) throw std::runtime_error("Inform refused: " + r.body);
  log.generation = drv.policy_generation();
  for (const auto& t : o.transfers) {
    soap::Envelope e;
    e.cwmp_ns = inform.cwmp_ns;
    e.header.id = "tc";
    soap::TransferComplete tc;
    tc.command_key = t.command_key;
    tc.fault.code = t.fault_code;
    tc.fault.string = t.fault_string;
    tc.start_time = tc.complete_time = "2026-11-21T12:00:00Z";
    e.body = tc;
    r = drv.handle(e, now).reply;
    if (r.status != 200) throw std::runtime_error("TransferComplete refused: " + r.body);
  }
  soap::Envelope empty;
  empty.cwmp_ns = inform.cwmp_ns;
  empty.body = soap::Empty{};
  r = drv.handle(empty, now).reply;
  size_t n = 0;
  while (r.status == 200) {
    soap::Envelope req;
    std::string err;
    if (!soap::parse(r.body, req, &err)) throw std::runtime_error("bad ACS request: " + err);
    log.requests.push_back(req.body);
    log.methods.emplace_back(soap::method_name(req.body));
    if (n >= o.stop_after) {
      drv.abort(cwmp::EndReason::kTimeout, "the CPE went silent");
      break;
    }
    soap::Body answer;
    if (auto it = o.fault_at.find(n); it != o.fault_at.end()) {
      soap::Fault f;
      f.code = it->second;
      f.string = "injected fault";
      answer = f;
    } else {
      answer = sim::answer_acs_request(d.model, d.serial, req.body, d.cpe);
    }
    ++n;
    r = drv.handle(reply_to(req, std::move(answer)), now).reply;
  }
  log.final_status = r.status;
  log.end = drv.session().end_reason();
  session::Outcome out = drv.finish(false);
  log.result = std::move(out.result);
  for (const auto& tr : log.result.task_results) log.task_results.emplace_back(tr.ok, tr.result);
  if (!log.result.device_id.empty()) {
    // As the store keeps it: the device after the session (the tasks were
    // this session's only).
    d.stored = device::apply_session(d.stored.get(), log.result);
  }
  return log;
}

}  // namespace luacs::policytest
