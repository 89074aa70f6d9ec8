// Policy tests in C++: a policy folder loaded into the real policy engine,
// and whole sessions of simulated CPEs (corpus data models,
// ../shared/corpus/datamodels) run through the real session driver by
// core/policytest -- the same code `luacs test` runs for policy tests
// written in Lua.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/cwmp/session.h"
#include "core/device/device.h"
#include "core/policytest/sim_session.h"
#include "core/session/driver.h"
#include "core/sim/cpe.h"
#include "core/sim/datamodel.h"
#include "lua/policy.h"

namespace luacs::test {

// The two full data models of the corpus, by file stem.
inline constexpr const char* kTr181 = "tr181-tplink-EC220-G5v3-anlix-genieacs-sim";
inline constexpr const char* kTr098 = "tr098-huawei-BM632w-genieacs-sim";

// A data model of the corpus, by file stem ("tr098-huawei-BM632w-genieacs-sim").
sim::DataModel corpus_model(const std::string& stem);
// The TR-181 corpus model dressed as a MikroTik: DeviceId MikroTik /
// "hAP lite" / OUI E48D8C, SoftwareVersion `version`, X_MIKROTIK_ArchName
// `arch`, and no Wi-Fi radio names changed.
sim::DataModel mikrotik_model(const std::string& version, const std::string& arch);

// A policy folder written from (name, text) pairs into a fresh temp dir.
std::string policy_dir(const std::vector<std::pair<std::string, std::string>>& files);
// A temp folder holding copies of policies/default plus `extra` files.
std::string default_policy_with(const std::vector<std::pair<std::string, std::string>>& extra);

// One policy file loaded into a manager, and an Engine on it: for the hooks
// called outside a session (connection_request_auth, authorize). The load
// must succeed (a test failure otherwise).
struct OneFilePolicy {
  OneFilePolicy(const std::string& name, const std::string& lua);
  lua::PolicyManager manager;
  lua::Engine engine;
};

struct Published {
  std::string name, content_type, bytes, device_id;
};

// What one session did.
using SessionLog = policytest::SimLog;

// `v` holds `s` (tags added or removed, method names).
inline bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A summary field as this session last wrote it ("<none>": not written).
std::string summary(const SessionLog& log, const std::string& key);

class PolicyWorld {
 public:
  explicit PolicyWorld(const std::string& dir, lua::Limits limits = {});
  lua::PolicyManager& manager() { return manager_; }
  lua::Engine& engine() { return engine_; }
  const std::map<std::string, Published>& published() const { return published_; }
  // Files "in [files] dir" that path_of() knows.
  void add_disk_file(const std::string& name) { disk_.insert({name, "/disk/" + name}); }

  using Device = policytest::SimDevice;
  Device device(sim::DataModel m, std::string serial = "");

  using Options = policytest::SimOptions;
  SessionLog session(Device& d, const Options& o);
  SessionLog session(Device& d) { return session(d, Options{}); }

 private:
  lua::FileServices file_services();

  lua::PolicyManager manager_;
  lua::Engine engine_;
  session::Services services_;
  std::map<std::string, Published> published_;
  std::map<std::string, std::string> disk_;
};

}  // namespace luacs::test
