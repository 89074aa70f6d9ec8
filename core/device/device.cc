#include "core/device/device.h"

#include <algorithm>
#include <atomic>

namespace luacs::device {

void apply_session(Device& d, const SessionResult& r) {
  if (d.first_seen == Time{}) d.first_seen = r.inform_time;
  if (d.id != r.device_id) d.id = r.device_id;
  auto keep = [](std::string& field, const std::string& v) {
    if (!v.empty() && field != v) field = v;
  };
  keep(d.oui, r.identity.oui);
  keep(d.product_class, r.identity.product_class);
  keep(d.serial_number, r.identity.serial_number);
  keep(d.manufacturer, r.identity.manufacturer);
  keep(d.data_model_root, r.data_model_root);
  keep(d.remote_address, r.remote_address);
  d.last_inform = r.inform_time;
  d.last_events.resize(r.events.size());
  for (size_t i = 0; i < r.events.size(); ++i) {
    const std::string& code = r.events[i].code;
    if (d.last_events[i] != code) d.last_events[i] = code;
    if (code == "1 BOOT") d.last_boot = r.inform_time;
    if (code == "0 BOOTSTRAP") d.last_bootstrap = r.inform_time;
  }
  for (const auto& [pv, read_at] : r.parameters) {
    StoredParameter& p = d.parameters[pv.name];
    if (p.value != pv.value) p.value = pv.value;
    if (p.type != pv.type) p.type = pv.type;
    p.read_at = read_at == Time{} ? r.inform_time : read_at;
  }
  for (const auto& t : r.tags_added) d.tags.insert(t);
  for (const auto& t : r.tags_removed) d.tags.erase(t);
  if (!r.task_results.empty()) {
    std::erase_if(d.pending_tasks, [&](const Task& t) {
      return std::any_of(r.task_results.begin(), r.task_results.end(),
                         [&](const TaskResult& tr) { return tr.id == t.id; });
    });
  }
}

std::shared_ptr<const Device> apply_session(const Device* base, const SessionResult& r) {
  auto d = base ? std::make_shared<Device>(*base) : std::make_shared<Device>();
  apply_session(*d, r);
  return d;
}

void apply_session(std::shared_ptr<const Device>& snapshot, const SessionResult& r) {
  // Under the shard lock nobody can take a new reference, so a count of one
  // means nobody else can see the device: change it in place. (The acquire
  // fence pairs with the release of the last other holder's reference.)
  if (snapshot && snapshot.use_count() == 1) {
    std::atomic_thread_fence(std::memory_order_acquire);
    apply_session(const_cast<Device&>(*snapshot), r);  // created non-const by make_shared<Device>
    return;
  }
  snapshot = apply_session(snapshot.get(), r);
}

}  // namespace luacs::device
