#include "core/store/write_behind.h"

#include <algorithm>

namespace luacs::store {

size_t WriteQueue::push(Queued q) {
  (q.droppable() ? plain_ : kept_).push_back(std::move(q));
  size_t dropped = 0;
  while (size() > max_pending_ && !plain_.empty()) {
    plain_.pop_front();
    ++dropped;
  }
  return dropped;
}

const Queued* WriteQueue::front() const {
  if (plain_.empty()) return kept_.empty() ? nullptr : &kept_.front();
  if (kept_.empty()) return &plain_.front();
  return plain_.front().seq < kept_.front().seq ? &plain_.front() : &kept_.front();
}

std::deque<Queued>& WriteQueue::deque_of_front() {
  if (plain_.empty()) return kept_;
  if (kept_.empty()) return plain_;
  return plain_.front().seq < kept_.front().seq ? plain_ : kept_;
}

uint64_t WriteQueue::oldest_seq() const {
  const Queued* f = front();
  return f ? f->seq : std::numeric_limits<uint64_t>::max();
}

std::chrono::steady_clock::time_point WriteQueue::oldest_time() const {
  const Queued* f = front();
  return f ? f->queued : std::chrono::steady_clock::time_point::max();
}

std::vector<Queued> WriteQueue::take(size_t n, uint64_t limit) {
  std::vector<Queued> out;
  if (const Queued* f = front()) n = std::min(n, f->max_batch);
  while (out.size() < n) {
    const Queued* f = front();
    if (!f || f->seq >= limit) break;
    auto& d = deque_of_front();
    out.push_back(std::move(d.front()));
    d.pop_front();
  }
  return out;
}

bool WriteQueue::has_transfer_before(const std::string& device_id, uint64_t seq) const {
  // Transfers are never droppable, so only kept_ (durable items: few) is scanned.
  for (const Queued& q : kept_) {
    if (q.seq >= seq) break;
    if (q.is_transfer && q.transfer.transfer.device_id == device_id) return true;
  }
  return false;
}

void WriteQueue::put_back(std::vector<Queued> items) {
  for (auto it = items.rbegin(); it != items.rend(); ++it) {
    (it->droppable() ? plain_ : kept_).push_front(std::move(*it));
  }
}

std::vector<Queued> WriteQueue::take_all() {
  std::vector<Queued> out;
  while (!empty()) {
    auto& d = deque_of_front();
    out.push_back(std::move(d.front()));
    d.pop_front();
  }
  return out;
}

}  // namespace luacs::store
