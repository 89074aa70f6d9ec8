// The simulated fleet, shared read-only by the load threads: the data models
// in use and, per model, one pre-written Inform per entry of the event mix.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/cr_inform.h"
#include "bench/loadgen/options.h"
#include "core/sim/cpe.h"
#include "core/sim/datamodel.h"

namespace luacs::loadgen {

// The simulated CPE itself (its data model, its Inform, its answers) is
// core/sim's: the policy tests and `luacs test` simulate the same devices.
using sim::answer_acs_request;
using sim::CpeSession;
using sim::DataModel;
using sim::format_time;
using sim::InformTemplate;
using sim::is_acs_request;
using sim::make_inform;
using sim::serial_for;

// The CommandKey of the TransferComplete sessions the event mix asks for.
inline constexpr const char* kMixTransferKey = "loadgen-download";

struct ModelKit {
  DataModel model;
  std::vector<InformTemplate> informs;  // one per Options::events entry
  // --cr-listen: the same with the connection-request parameters, and last
  // the Inform of a woken device (6 CONNECTION REQUEST).
  std::vector<CrInformTemplate> cr_informs;
};

class Fleet {
 public:
  // Loads the CSVs the model choice needs. Throws std::runtime_error.
  explicit Fleet(const Options& opt);

  // Device i uses model i mod (number of models).
  const ModelKit& kit(uint64_t device) const { return *kits_[device % kits_.size()]; }
  size_t models() const { return kits_.size(); }
  const ModelKit& kit_at(size_t i) const { return *kits_[i]; }

  // The events of a session drawn for mix entry `entry`.
  static std::vector<soap::EventStruct> events_of(const EventMixEntry& entry);

 private:
  std::vector<std::unique_ptr<ModelKit>> kits_;
};

}  // namespace luacs::loadgen
