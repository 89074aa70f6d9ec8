#include "policy/harness.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/cwmp/device_id.h"
#include "core/files/policy_files.h"
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
  // One left by an earlier process of the same pid (pids wrap in a CI
  // container) would lend this one its files.
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace

OneFilePolicy::OneFilePolicy(const std::string& name, const std::string& lua)
    : manager(policy_dir({{name, lua}}), lua::Limits{}), engine(manager, {}, 0) {
  const auto r = manager.reload();
  EXPECT_TRUE(r.ok) << r.error;
}

sim::DataModel corpus_model(const std::string& stem) {
  return sim::DataModel::load(std::string(LUACS_SHARED_DIR) + "/corpus/datamodels/" + stem +
                              ".csv");
}

sim::DataModel mikrotik_model(const std::string& version, const std::string& arch) {
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
  return sim::DataModel::from_csv(out, "mikrotik-hap-lite");
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

PolicyWorld::PolicyWorld(const std::string& dir, lua::Limits limits)
    : manager_(dir, limits), engine_(manager_, file_services(), 0) {
  auto r = manager_.reload();
  if (!r.ok) throw std::runtime_error("policy does not load: " + r.error);
}

// The files the policy generates are built by the server's own code
// (core/files/mikrotik) and kept in published_ instead of a file server.
lua::FileServices PolicyWorld::file_services() {
  lua::FileServices s;
  files::serve_mikrotik_files(s, [this](files::mikrotik::Generated f) {
    std::string path = "/tok" + std::to_string(published_.size()) + "/" + f.name;
    published_[f.name] = {f.name, f.content_type, f.bytes, f.device_id};
    return path;
  });
  s.path_of = [this](std::string_view name) {
    auto it = disk_.find(std::string(name));
    return it == disk_.end() ? std::string() : it->second;
  };
  s.base_url = [](std::string_view) { return std::string("http://acs.test:7567"); };
  return s;
}

PolicyWorld::Device PolicyWorld::device(sim::DataModel m, std::string serial) {
  Device d{std::move(m), {}, {}, nullptr};
  d.serial = serial.empty() ? d.model.device_id().serial_number : serial;
  return d;
}

SessionLog PolicyWorld::session(Device& d, const Options& o) {
  services_.engine = &engine_;
  return policytest::run_session(services_, d, o);
}

}  // namespace luacs::test
