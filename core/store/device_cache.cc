#include "core/store/device_cache.h"

#include <algorithm>
#include <atomic>

namespace luacs::store {

namespace {

// What a string holds outside itself (beyond its in-place buffer).
size_t heap(const std::string& s) {
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}

}  // namespace

DeviceCache::DeviceCache(size_t capacity, size_t max_bytes)
    : capacity_(capacity),
      per_shard_(capacity == 0 ? 0 : (capacity + kShards - 1) / kShards),
      per_shard_bytes_(max_bytes / kShards) {}

DeviceCache::Shard& DeviceCache::shard_of(const std::string& id) {
  return shards_[std::hash<std::string>{}(id) % kShards];
}

void DeviceCache::charge(Shard& s, Entry& e) {
  s.bytes -= e.bytes;
  e.bytes = approx_bytes(*e.entry.device) + sizeof(Entry) + 2 * 32 /* list and index nodes */ +
            heap(e.id);
  s.bytes += e.bytes;
}

void DeviceCache::trim(Shard& s) {
  // The entry just used is at the front and stays, whatever its size.
  const uint64_t committed_below =
      unflushed_from_ ? unflushed_from_->load(std::memory_order_acquire) : UINT64_MAX;
  while (s.lru.size() > 1 && (s.lru.size() > per_shard_ || s.bytes > per_shard_bytes_)) {
    if (s.lru.back().write_seq >= committed_below) break;  // its last write is not in PostgreSQL yet
    s.bytes -= s.lru.back().bytes;
    s.index.erase(s.lru.back().id);
    s.lru.pop_back();
    ++evictions_;
  }
}

std::optional<CacheEntry> DeviceCache::get(const std::string& id) {
  if (!capacity_) return std::nullopt;
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(id);
  if (it == s.index.end()) return std::nullopt;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->entry;
}

CacheEntry DeviceCache::put_if_absent(const std::string& id, CacheEntry e) {
  if (!capacity_) return e;
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(id);
  if (it != s.index.end()) {
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return it->second->entry;
  }
  s.lru.push_front(Entry{id, e, 0, 0});
  s.index.emplace(s.lru.front().id, s.lru.begin());
  charge(s, s.lru.front());
  trim(s);
  return e;
}

bool DeviceCache::update(const std::string& id, const std::function<void(CacheEntry&)>& f,
                         uint64_t write_seq) {
  if (!capacity_) return false;
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(id);
  if (it == s.index.end()) return false;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  f(it->second->entry);
  if (write_seq) it->second->write_seq = write_seq;
  charge(s, *it->second);
  trim(s);
  return true;
}

void DeviceCache::erase(const std::string& id) {
  if (!capacity_) return;
  Shard& s = shard_of(id);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(id);
  if (it == s.index.end()) return;
  auto node = it->second;
  s.bytes -= node->bytes;
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

size_t DeviceCache::bytes() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.bytes;
  }
  return n;
}

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

size_t approx_bytes(const Device& d) {
  constexpr size_t kNode = 32;  // a std::map / std::set / list node's own links and malloc header
  size_t n = sizeof(Device) + 32 /* shared_ptr control block */ + heap(d.id) + heap(d.oui) +
             heap(d.product_class) + heap(d.serial_number) + heap(d.manufacturer) +
             heap(d.data_model_root) + heap(d.remote_address);
  n += d.last_events.capacity() * sizeof(std::string);
  for (const auto& e : d.last_events) n += heap(e);
  for (const auto& t : d.tags) n += kNode + sizeof(std::string) + heap(t);
  for (const auto& [name, p] : d.parameters)
    n += kNode + sizeof(std::pair<const std::string, StoredParameter>) + heap(name) + heap(p.value) +
         heap(p.type);
  for (const auto& t : d.pending_tasks)
    n += sizeof(Task) + heap(t.device_id) + heap(t.name) + heap(t.args) + heap(t.unique_key);
  return n;
}

}  // namespace luacs::store
