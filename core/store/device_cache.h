// Internal to core/store: the device cache on the Inform path.
//
// A bounded LRU of immutable snapshots (shared_ptr<const Device>), sharded
// by id hash so workers and the store thread rarely meet on a lock. An entry
// is either a device or "known absent" (loaded, not in PostgreSQL), which
// keeps the tasks queued for a device that has not informed yet and lets the
// first session's result build the device without another load.
//
// Writers replace snapshots (copy, change, swap) under the shard lock;
// readers keep the snapshot they got for as long as they like.
#pragma once

#include <array>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/store/store.h"

namespace luacs::store {

struct CacheEntry {
  std::shared_ptr<const Device>
      device;  // never null; for an absent device only id and pending_tasks
  bool exists = true;
};

class DeviceCache {
 public:
  explicit DeviceCache(size_t capacity);

  std::optional<CacheEntry> get(const std::string& id);
  // Inserts unless present; returns what is cached now (`e` if capacity is 0).
  CacheEntry put_if_absent(const std::string& id, CacheEntry e);
  // Runs f on the entry under its shard lock if present; f may replace it.
  bool update(const std::string& id, const std::function<void(CacheEntry&)>& f);
  void erase(const std::string& id);
  size_t size() const;
  size_t capacity() const { return capacity_; }

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    std::list<std::pair<std::string, CacheEntry>> lru;  // front = most recent
    std::unordered_map<std::string_view, std::list<std::pair<std::string, CacheEntry>>::iterator>
        index;
  };
  Shard& shard_of(const std::string& id);

  size_t capacity_;
  size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

// The device after `r`: `base` (nullptr for a device never stored) with the
// session's identity, inform, events, parameters and tags applied and the
// tasks it finished removed from pending_tasks.
std::shared_ptr<const Device> apply_session(const Device* base, const SessionResult& r);

}  // namespace luacs::store
