// One whole CWMP session of a simulated CPE (core/sim) through the real
// session driver (core/session) and policy engine, with no socket and no
// database: what `luacs test` and the policy tests run.
//
// What the store would keep between two sessions is kept in the device's
// `stored` snapshot, updated from each session's result by
// device::apply_session, as the store's device cache is.
//
// Thread: whoever calls run_session; nothing here is shared.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/cwmp/session.h"
#include "core/device/device.h"
#include "core/session/driver.h"
#include "core/sim/cpe.h"
#include "core/sim/datamodel.h"
#include "lua/policy.h"

namespace luacs::policytest {

// A simulated device and what it keeps across sessions.
struct SimDevice {
  sim::DataModel model;
  std::string serial;
  sim::CpeSession cpe;                           // what the CPE accepted stays set
  std::shared_ptr<const device::Device> stored;  // null before the first session
  // What an operator changes between two sessions: a copy of the stored
  // device (as the store would make one) to change.
  device::Device& edit();
};

struct SimOptions {
  std::vector<soap::EventStruct> events{{"2 PERIODIC", ""}};
  std::vector<lua::TransferInfo> transfers;  // TransferCompletes sent before the ACS's turn
  // Tasks queued for the device before this session, as the API queues
  // them: tasks.<fn> (name "fn") with JSON args.
  std::vector<std::pair<std::string, std::string>> tasks;
  // Answer the ACS request `n` (0-based) with this CPE fault code instead.
  std::map<size_t, uint32_t> fault_at;
  // Give up (the CPE goes silent) after this many ACS requests.
  size_t stop_after = SIZE_MAX;
};

// What one session did.
struct SimLog {
  std::vector<soap::Body> requests;  // every ACS request, in order
  std::vector<std::string> methods;  // their names
  device::SessionResult result;      // what the server would store
  cwmp::EndReason end = cwmp::EndReason::kNone;
  int final_status = 0;                                    // 204 when it ended cleanly
  std::vector<std::pair<bool, std::string>> task_results;  // the tasks' results, in order
  uint64_t generation = 0;                                 // of the policy it ran

  template <typename T>
  std::vector<T> all() const {
    std::vector<T> out;
    for (const auto& b : requests)
      if (auto* p = std::get_if<T>(&b)) out.push_back(*p);
    return out;
  }
  size_t count(const std::string& method) const;
};

// Runs one session of `d` with the policy of `services.engine` (or none).
// Throws std::runtime_error when the session engine refuses the simulated
// CPE's Inform or TransferComplete (a broken data model).
SimLog run_session(const session::Services& services, SimDevice& d, const SimOptions& o);

}  // namespace luacs::policytest
