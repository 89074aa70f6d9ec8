// Drives whole CWMP sessions through the real session driver (core/session:
// the session engine, the policy engine and the device's tasks, as a worker
// runs them), with a simulated CPE answering from a corpus data model
// (../shared/corpus/datamodels). No sockets, no database: what the store
// would keep between sessions is carried in a device::Device, updated from
// each session's result by device::apply_session, as the store's cache is.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/cpe.h"
#include "bench/loadgen/datamodel.h"
#include "core/cwmp/session.h"
#include "core/device/device.h"
#include "core/session/driver.h"
#include "lua/policy.h"

namespace luacs::test {

// The two full data models of the corpus, by file stem.
inline constexpr const char* kTr181 = "tr181-tplink-EC220-G5v3-anlix-genieacs-sim";
inline constexpr const char* kTr098 = "tr098-huawei-BM632w-genieacs-sim";

// A data model of the corpus, by file stem ("tr098-huawei-BM632w-genieacs-sim").
loadgen::DataModel corpus_model(const std::string& stem);
// The TR-181 corpus model dressed as a MikroTik: DeviceId MikroTik /
// "hAP lite" / OUI E48D8C, SoftwareVersion `version`, X_MIKROTIK_ArchName
// `arch`, and no Wi-Fi radio names changed.
loadgen::DataModel mikrotik_model(const std::string& version, const std::string& arch);

// A policy folder written from (name, text) pairs into a fresh temp dir.
std::string policy_dir(const std::vector<std::pair<std::string, std::string>>& files);
// A temp folder holding copies of policies/default plus `extra` files.
std::string default_policy_with(const std::vector<std::pair<std::string, std::string>>& extra);

struct Published {
  std::string name, content_type, bytes, device_id;
};

// What one session did.
struct SessionLog {
  std::vector<soap::Body> requests;  // every ACS request, in order
  std::vector<std::string> methods;  // their names
  device::SessionResult result;      // what the server would store
  cwmp::EndReason end = cwmp::EndReason::kNone;
  int final_status = 0;                                    // 204 when it ended cleanly
  std::vector<std::pair<bool, std::string>> task_results;  // the tasks' results, in order
  uint64_t generation = 0;
  template <typename T>
  std::vector<T> all() const {
    std::vector<T> out;
    for (const auto& b : requests)
      if (auto* p = std::get_if<T>(&b)) out.push_back(*p);
    return out;
  }
  size_t count(const std::string& method) const;
};

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

  struct Device {
    loadgen::DataModel model;
    std::string serial;
    loadgen::CpeSession cpe;  // kept across sessions: what the CPE accepted stays set
    std::shared_ptr<const device::Device> stored;  // null before the first session
    // What an operator changes between two sessions: a copy of the stored
    // device (as the store would make one) to change.
    device::Device& edit() {
      auto copy = std::make_shared<device::Device>(*stored);
      stored = copy;
      return *copy;
    }
  };
  Device device(loadgen::DataModel m, std::string serial = "");

  struct Options {
    std::vector<soap::EventStruct> events{{"2 PERIODIC", ""}};
    std::vector<lua::TransferInfo> transfers;  // sent before the turn
    // Tasks queued for the device before this session, as the API queues
    // them: tasks.<fn> (name "fn") with JSON args.
    std::vector<std::pair<std::string, std::string>> tasks;
    // Answer the ACS request `n` (0-based) with this fault code instead.
    std::map<size_t, uint32_t> fault_at;
    // Give up (the CPE goes silent) after this many ACS requests.
    size_t stop_after = SIZE_MAX;
  };
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
