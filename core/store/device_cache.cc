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
    if (s.lru.back().write_seq >= committed_below)
      break;  // its last write is not in PostgreSQL yet
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

size_t approx_bytes(const Device& d) {
  constexpr size_t kNode = 32;  // a std::map / std::set / list node's own links and malloc header
  size_t n = sizeof(Device) + 32 /* shared_ptr control block */ + heap(d.id) + heap(d.oui) +
             heap(d.product_class) + heap(d.serial_number) + heap(d.manufacturer) +
             heap(d.data_model_root) + heap(d.remote_address);
  n += d.last_events.capacity() * sizeof(std::string);
  for (const auto& e : d.last_events) n += heap(e);
  for (const auto& t : d.tags) n += kNode + sizeof(std::string) + heap(t);
  for (const auto& [name, p] : d.parameters)
    n += kNode + sizeof(std::pair<const std::string, StoredParameter>) + heap(name) +
         heap(p.value) + heap(p.type);
  for (const auto& t : d.pending_tasks)
    n += sizeof(Task) + heap(t.device_id) + heap(t.name) + heap(t.args) + heap(t.unique_key);
  return n;
}

}  // namespace luacs::store
