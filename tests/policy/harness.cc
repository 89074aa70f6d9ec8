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

namespace {

class Handler final : public cwmp::SessionHandler {
 public:
  Handler(lua::Engine& e, PolicyWorld::Device& d, const PolicyWorld::Options& o, SessionLog& log)
      : engine_(e), d_(d), o_(o), log_(log) {}

  void on_inform(cwmp::Session& s) override {
    lua::RunContext ctx;
    ctx.session = &s;
    ctx.device = d_.stored;
    ctx.result = &log_.result;
    ctx.host = "acs.test:7547";
    ctx.peer = "192.0.2.7:4711";
    run_ = engine_.start(std::move(ctx));
    if (run_) log_.generation = run_->generation();
  }
  void on_cpe_request(cwmp::Session&, const soap::Body& b) override {
    if (!run_) return;
    if (auto* tc = std::get_if<soap::TransferComplete>(&b)) {
      lua::TransferInfo t;
      t.command_key = tc->command_key;
      t.fault_code = tc->fault.code;
      t.fault_string = tc->fault.string;
      run_->transfer_complete(t);
    }
  }
  void on_acs_turn(cwmp::Session&) override {
    if (!run_) return;
    if (run_->advance() == lua::Run::Step::kWaiting) return;
    while (next_task_ < o_.tasks.size()) {
      const auto& [fn, args] = o_.tasks[next_task_++];
      run_->add_task(fn, args, [this](bool ok, std::string json) {
        log_.task_results.emplace_back(ok, std::move(json));
      });
      if (run_->advance() == lua::Run::Step::kWaiting) return;
    }
  }
  void on_rpc_done(cwmp::Session&, const soap::Body& req, const cwmp::RpcOutcome& o) override {
    if (!o.ok()) return;
    auto now = std::chrono::system_clock::now();
    if (auto* gpv = std::get_if<soap::GetParameterValuesResponse>(&o.response))
      for (const auto& p : gpv->parameters) log_.result.parameters.emplace_back(p, now);
    if (auto* spv = std::get_if<soap::SetParameterValues>(&req))
      for (const auto& p : spv->parameters) log_.result.parameters.emplace_back(p, now);
  }
  void on_end(cwmp::Session&) override {
    if (run_) run_->end();
  }
  void drop() { run_.reset(); }

 private:
  lua::Engine& engine_;
  PolicyWorld::Device& d_;
  const PolicyWorld::Options& o_;
  SessionLog& log_;
  std::unique_ptr<lua::Run> run_;
  size_t next_task_ = 0;
};

void apply(PolicyWorld::Device& d, const soap::Inform& in, const SessionLog& log) {
  auto now = std::chrono::system_clock::now();
  auto dev =
      d.stored ? std::make_shared<store::Device>(*d.stored) : std::make_shared<store::Device>();
  if (!d.stored) {
    dev->id = cwmp::device_id(in.device_id);
    dev->first_seen = now;
  }
  dev->last_inform = now;
  dev->data_model_root = d.model.root();
  for (const auto& p : in.parameters) dev->parameters[p.name] = {p.value, p.type, now};
  for (const auto& [p, t] : log.result.parameters) dev->parameters[p.name] = {p.value, p.type, t};
  for (const auto& t : log.result.tags_added) dev->tags.insert(t);
  for (const auto& t : log.result.tags_removed) dev->tags.erase(t);
  d.stored = dev;
}

}  // namespace

SessionLog PolicyWorld::session(Device& d, const Options& o) {
  SessionLog log;
  Handler h(engine_, d, o, log);
  auto now = cwmp::Clock::now();
  cwmp::Session s("test-session", {}, &h, now);
  soap::Envelope inform = loadgen::make_inform(d.model, d.serial, o.events, "2026-11-21T12:00:00Z");
  cwmp::Reply r = s.handle(inform, now);
  if (r.status != 200) throw std::runtime_error("Inform refused: " + r.body);
  log.result.inform_time = std::chrono::system_clock::now();
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
    r = s.handle(e, now);
    if (r.status != 200) throw std::runtime_error("TransferComplete refused: " + r.body);
  }
  soap::Envelope empty;
  empty.cwmp_ns = inform.cwmp_ns;
  empty.body = soap::Empty{};
  r = s.handle(empty, now);
  size_t n = 0;
  while (r.status == 200) {
    soap::Envelope req;
    std::string err;
    if (!soap::parse(r.body, req, &err)) throw std::runtime_error("bad ACS request: " + err);
    log.requests.push_back(req.body);
    log.methods.emplace_back(soap::method_name(req.body));
    if (n >= o.stop_after) {
      s.abort(cwmp::EndReason::kTimeout, "the CPE went silent");
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
    r = s.handle(reply_to(req, std::move(answer)), now);
  }
  log.final_status = r.status;
  log.end = s.end_reason();
  h.drop();
  if (s.device_id().size()) apply(d, s.inform(), log);
  return log;
}

}  // namespace luacs::test
