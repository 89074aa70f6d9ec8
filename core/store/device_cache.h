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
#include <atomic>
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
  // At most `capacity` devices and about `max_bytes` of them (their strings,
  // parameters, tags and tasks as approx_bytes() counts them).
  DeviceCache(size_t capacity, size_t max_bytes);

  std::optional<CacheEntry> get(const std::string& id);
  // Inserts unless present; returns what is cached now (`e` if capacity is 0).
  CacheEntry put_if_absent(const std::string& id, CacheEntry e);
  // Runs f on the entry under its shard lock if present; f may replace it.
  // `write_seq`: the store's sequence number of the write f reflects; the
  // entry is not evicted before that write is committed (see set_unflushed).
  bool update(const std::string& id, const std::function<void(CacheEntry&)>& f,
              uint64_t write_seq = 0);
  // The store's watermark: every write numbered below it is committed. An
  // entry updated by a later write stays (a reload from PostgreSQL would
  // miss that write), even beyond the bounds for a while.
  void set_unflushed(const std::atomic<uint64_t>* from) { unflushed_from_ = from; }
  void erase(const std::string& id);
  size_t size() const;
  size_t bytes() const;
  uint64_t evictions() const { return evictions_; }
  size_t capacity() const { return capacity_; }

 private:
  static constexpr size_t kShards = 64;
  struct Entry {
    std::string id;
    CacheEntry entry;
    size_t bytes;
    uint64_t write_seq;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // front = most recent
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index;
    size_t bytes = 0;
  };
  Shard& shard_of(const std::string& id);
  void charge(Shard& s, Entry& e);  // recount e's bytes into s
  void trim(Shard& s);              // evict from the back down to the bounds

  size_t capacity_;
  size_t per_shard_;
  size_t per_shard_bytes_;
  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> evictions_{0};
  const std::atomic<uint64_t>* unflushed_from_ = nullptr;
};

// What a device costs in memory, roughly (for the cache's bound).
size_t approx_bytes(const Device& d);

}  // namespace luacs::store
