// Internal to core/store: the write-behind queue (store thread only).
//
// Session results and transfer-sent records wait here until the next batch.
// The queue is bounded by max_pending while PostgreSQL is away: beyond it the
// oldest "last seen only" results (no tags, faults, task results, no caller
// waiting) are dropped first — a later session of the same device rewrites
// the same facts. Everything else is kept whatever the bound: those writes
// were promised.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <vector>

#include "core/store/session_batch.h"
#include "core/store/store.h"

namespace luacs::store {

struct Queued {
  uint64_t seq = 0;
  std::chrono::steady_clock::time_point queued{};
  bool is_transfer = false;  // a SentTransfer, else a SessionResult
  SessionResult session;
  SentTransfer transfer;
  Executor exec;
  std::function<void(bool)> done;
  bool told = false;  // done(false) already ran (durable timeout); still written
  // A batch holding this item failed with an SQL error: retry it in batches
  // of at most this many, halving each time, down to 1 (then it is dropped).
  size_t max_batch = std::numeric_limits<size_t>::max();

  bool droppable() const {
    return !is_transfer && !done && session.tags_added.empty() && session.tags_removed.empty() &&
           session.faults.empty() && session.task_results.empty();
  }
};

class WriteQueue {
 public:
  explicit WriteQueue(size_t max_pending) : max_pending_(max_pending) {}

  // Returns how many droppable items were dropped to stay within bounds.
  size_t push(Queued q);
  size_t size() const { return plain_.size() + kept_.size(); }
  bool empty() const { return plain_.empty() && kept_.empty(); }
  uint64_t oldest_seq() const;  // max() when empty
  std::chrono::steady_clock::time_point oldest_time() const;

  // Up to `n` items with seq < limit, oldest first (fewer if the oldest has a
  // smaller max_batch).
  std::vector<Queued> take(size_t n, uint64_t limit);
  // A transfer-sent record of `device_id` queued before `seq` (its
  // TransferComplete must find the row).
  bool has_transfer_before(const std::string& device_id, uint64_t seq) const;
  // Items taken by take() go back in front, in their order.
  void put_back(std::vector<Queued> items);

  template <class F>
  void for_each(F&& f) {
    for (auto& q : plain_) f(q);
    for (auto& q : kept_) f(q);
  }
  std::vector<Queued> take_all();

 private:
  const Queued* front() const;
  std::deque<Queued>& deque_of_front();

  size_t max_pending_;
  std::deque<Queued> plain_, kept_;
};

}  // namespace luacs::store
