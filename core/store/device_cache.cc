#include "core/store/device_cache.h"

#include <algorithm>

namespace luacs::store {

DeviceCache::DeviceCache(size_t capacity)
    : capacity_(capacity), per_shard_(capacity == 0 ? 0 : (capacity + kShards - 1) / kShards) {}

DeviceCache::Shard& DeviceCache::shard_of(const std::string& id) {
  return shards_[std::hash<std::string>{}(id) % kShards];
}

std::optional<CacheEntry> DeviceCache::get(const std::string& id) {
  if (!capacity_) return std::nullopt;
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(id);
  if (it == s.index.end()) return std::nullopt;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

CacheEntry DeviceCache::put_if_absent(const std::string& id, CacheEntry e) {
  if (!capacity_) return e;
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(id);
  if (it != s.index.end()) {
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return it->second->second;
  }
  s.lru.emplace_front(id, e);
  s.index.emplace(s.lru.front().first, s.lru.begin());
  while (s.lru.size() > per_shard_) {
    s.index.erase(s.lru.back().first);
    s.lru.pop_back();
  }
  return e;
}

bool DeviceCache::update(const std::string& id, const std::function<void(CacheEntry&)>& f) {
  if (!capacity_) return false;
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(id);
  if (it == s.index.end()) return false;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  f(it->second->second);
  return true;
}

void DeviceCache::erase(const std::string& id) {
  if (!capacity_) return;
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(id);
  if (it == s.index.end()) return;
  auto node = it->second;
  s.index.erase(it);
  s.lru.erase(node);
}

size_t DeviceCache::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.lru.size();
  }
  return n;
}

std::shared_ptr<const Device> apply_session(const Device* base, const SessionResult& r) {
  auto d = base ? std::make_shared<Device>(*base) : std::make_shared<Device>();
  if (!base || d->first_seen == Time{}) d->first_seen = r.inform_time;
  d->id = r.device_id;
  if (!r.identity.oui.empty()) d->oui = r.identity.oui;
  if (!r.identity.product_class.empty()) d->product_class = r.identity.product_class;
  if (!r.identity.serial_number.empty()) d->serial_number = r.identity.serial_number;
  if (!r.identity.manufacturer.empty()) d->manufacturer = r.identity.manufacturer;
  if (!r.data_model_root.empty()) d->data_model_root = r.data_model_root;
  if (!r.remote_address.empty()) d->remote_address = r.remote_address;
  d->last_inform = r.inform_time;
  d->last_events.clear();
  for (const auto& e : r.events) {
    d->last_events.push_back(e.code);
    if (e.code == "1 BOOT") d->last_boot = r.inform_time;
    if (e.code == "0 BOOTSTRAP") d->last_bootstrap = r.inform_time;
  }
  for (const auto& [pv, read_at] : r.parameters) {
    d->parameters[pv.name] =
        StoredParameter{pv.value, pv.type, read_at == Time{} ? r.inform_time : read_at};
  }
  for (const auto& t : r.tags_added) d->tags.insert(t);
  for (const auto& t : r.tags_removed) d->tags.erase(t);
  if (!r.task_results.empty()) {
    std::erase_if(d->pending_tasks, [&](const Task& t) {
      return std::any_of(r.task_results.begin(), r.task_results.end(),
                         [&](const TaskResult& tr) { return tr.id == t.id; });
    });
  }
  return d;
}

}  // namespace luacs::store
