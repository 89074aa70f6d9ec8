#include "policy/harness.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/cwmp/device_id.h"
#include "core/files/mikrotik.h"
#include "core/soap/reader.h"
#include "core/soap/writer.h"

namespace luacs::test {
namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string temp_dir(const std::string& what) {
  static std::atomic<int> n{0};
  auto dir = fs::temp_directory_path() /
             ("luacs-policy-" + std::to_string(getpid()) + "-" + std::to_string(++n) + "-" + what);
  fs::create_directories(dir);
  return dir.string();
}

const soap::DeviceIdStruct& inform_identity(const soap::Envelope& inform) {
  return std::get<soap::Inform>(inform.body).device_id;
}

// The CPE's reply envelope to an ACS request.
soap::Envelope reply_to(const soap::Envelope& req, soap::Body body) {
  soap::Envelope e;
  e.cwmp_ns = req.cwmp_ns;
  e.header.id = req.header.id;
  e.body = std::move(body);
  return e;
}

}  // namespace

loadgen::DataModel corpus_model(const std::string& stem) {
  return loadgen::DataModel::load(std::string(LUACS_SHARED_DIR) + "/corpus/datamodels/" + stem +
                                  ".csv");
}

loadgen::DataModel mikrotik_model(const std::string& version, const std::string& arch) {
  std::string csv = read_text(std::string(LUACS_SHARED_DIR) +
                              "/corpus/datamodels/tr181-tplink-EC220-G5v3-anlix-genieacs-sim.csv");
  std::istringstream in(csv);
  std::string out, line;
  const std::string tail = ",2023-05-25T22:24:29.364Z,,,,";
  auto row = [&](const std::string& name, bool writable, const std::string& value) {
    return name + ",false,2023-05-25T22:24:29.364Z," + (writable ? "true" : "false") +
           ",2023-05-25T22:24:29.364Z,\"" + value + "\",xsd:string" + tail + "\n";
  };
  while (std::getline(in, line)) {
    if (line.rfind("DeviceID.", 0) == 0 || line.rfind("Device.DeviceInfo.SoftwareVersion,", 0) == 0)
      continue;
    out += line + "\n";
  }
  out += row("DeviceID.Manufacturer", false, "MikroTik");
  out += row("DeviceID.OUI", false, "E48D8C");
  out += row("DeviceID.ProductClass", false, "hAP lite");
  out += row("DeviceID.SerialNumber", false, "7DCF08DC745D");
  out += row("Device.DeviceInfo.SoftwareVersion", false, version);
  out += row("Device.DeviceInfo.X_MIKROTIK_ArchName", false, arch);
  out += row("Device.DeviceInfo.X_MIKROTIK_SystemIdentity", true, "MikroTik");
  return loadgen::DataModel::from_csv(out, "mikrotik-hap-lite");
}

std::string policy_dir(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string dir = temp_dir("policy");
  for (const auto& [name, text] : files) std::ofstream(fs::path(dir) / name) << text;
  return dir;
}

std::string default_policy_with(const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string dir = temp_dir("default");
  for (const auto& e : fs::directory_iterator(std::string(LUACS_SOURCE_DIR) + "/policies/default"))
    if (e.path().extension() == ".lua")
      fs::copy_file(e.path(), fs::path(dir) / e.path().filename());
  for (const auto& [name, text] : extra) std::ofstream(fs::path(dir) / name) << text;
  return dir;
}

std::string summary(const SessionLog& log, const std::string& key) {
  std::string v = "<none>";
  for (const auto& [p, t] : log.result.parameters)
    if (p.name == "Summary." + key) v = p.value;
  return v;
}

size_t SessionLog::count(const std::string& method) const {
  size_t n = 0;
  for (const auto& m : methods) n += m == method;
  return n;
}

PolicyWorld::PolicyWorld(const std::string& dir, lua::Limits limits)
    : manager_(dir, limits), engine_(manager_, file_services(), 0) {
  auto r = manager_.reload();
  if (!r.ok) throw std::runtime_error("policy does not load: " + r.error);
}

// The files the policy generates are built by the server's own code
// (core/files/mikrotik) and kept in published_ instead of a file server.
lua::FileServices PolicyWorld::file_services() {
  auto publish = [this](files::mikrotik::Generated f) {
    lua::ServedFile served{"/tok" + std::to_string(published_.size()) + "/" + f.name, f.name,
                           f.sha256, f.bytes.size()};
    published_[f.name] = {f.name, f.content_type, f.bytes, f.device_id};
    return served;
  };
  lua::FileServices s;
  s.publish_alter = [publish](std::string_view device_id, std::string script,
                              const std::optional<std::string>& name) {
    return publish(files::mikrotik::alter_script(device_id, std::move(script), name));
  };
  s.publish_manifest = [publish](const std::vector<std::string>& urls) {
    return publish(files::mikrotik::upgrade_manifest(urls));
  };
  s.path_of = [this](std::string_view name) {
    auto it = disk_.find(std::string(name));
    return it == disk_.end() ? std::string() : it->second;
  };
  s.base_url = [](std::string_view) { return std::string("http://acs.test:7567"); };
  return s;
}

PolicyWorld::Device PolicyWorld::device(loadgen::DataModel m, std::string serial) {
  Device d{std::move(m), {}, {}, nullptr};
  d.serial = serial.empty() ? d.model.device_id().serial_number : serial;
  return d;
}

SessionLog PolicyWorld::session(Device& d, const Options& o) {
  SessionLog log;
  services_.engine = &engine_;
  auto now = cwmp::Clock::now();
  session::Driver drv("test-session", {}, services_, {"192.0.2.7:4711", "acs.test:7547", "off"},
                      now);
  soap::Envelope inform = loadgen::make_inform(d.model, d.serial, o.events, "2026-11-21T12:00:00Z");
  std::shared_ptr<const device::Device> before = d.stored;
  if (!o.tasks.empty()) {
    // Queued for this session only: apply_session below starts from the
    // device without them.
    auto with_tasks =
        d.stored ? std::make_shared<device::Device>(*d.stored) : std::make_shared<device::Device>();
    if (with_tasks->id.empty()) with_tasks->id = cwmp::device_id(inform_identity(inform));
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
      answer = loadgen::answer_acs_request(d.model, d.serial, req.body, d.cpe);
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

}  // namespace luacs::test
