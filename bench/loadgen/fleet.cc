#include "bench/loadgen/fleet.h"

namespace luacs::loadgen {

namespace {
constexpr const char* kTr098File = "tr098-huawei-BM632w-genieacs-sim.csv";
constexpr const char* kTr181File = "tr181-tplink-EC220-G5v3-anlix-genieacs-sim.csv";
}  // namespace

std::vector<soap::EventStruct> Fleet::events_of(const EventMixEntry& entry) {
  std::vector<soap::EventStruct> events;
  for (const auto& code : entry.codes) events.push_back({code, ""});
  if (entry.transfer_complete) events.push_back({"M Download", kMixTransferKey});
  return events;
}

Fleet::Fleet(const Options& opt) {
  std::vector<std::string> files;
  if (opt.model != ModelChoice::kTr181) files.push_back(kTr098File);
  if (opt.model != ModelChoice::kTr098) files.push_back(kTr181File);
  for (const auto& f : files) {
    auto kit = std::make_unique<ModelKit>();
    kit->model = DataModel::load(opt.datamodels_dir + "/" + f);
    for (const auto& entry : opt.events) kit->informs.emplace_back(kit->model, events_of(entry));
    if (opt.cr.on()) {
      for (const auto& entry : opt.events)
        kit->cr_informs.emplace_back(kit->model, events_of(entry), opt.cr);
      kit->cr_informs.emplace_back(
          kit->model, std::vector<soap::EventStruct>{{"6 CONNECTION REQUEST", ""}}, opt.cr);
    }
    kits_.push_back(std::move(kit));
  }
}

}  // namespace luacs::loadgen
