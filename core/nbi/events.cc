#include "core/nbi/events.h"

namespace luacs::nbi {

void EventHub::publish(std::string type, std::string device_id, std::vector<std::string> tags,
                       std::string json) {
  publish(Event{std::move(type), std::move(device_id), std::move(tags), std::move(json)});
}

void EventHub::publish(Event e) {
  if (!active() || !exec_) return;
  exec_([this, e = std::move(e)] { deliver(e); });
}

void EventHub::later(std::function<void()> fn) {
  if (active() && exec_) exec_(std::move(fn));
}

uint64_t EventHub::subscribe(Sink sink) {
  sinks_.emplace(++last_id_, std::move(sink));
  active_.store(true, std::memory_order_release);
  return last_id_;
}

void EventHub::unsubscribe(uint64_t id) {
  sinks_.erase(id);
  if (sinks_.empty()) active_.store(false, std::memory_order_relaxed);
}

void EventHub::deliver(const Event& e) {
  // A sink may unsubscribe itself (or, dropping its client, another):
  // walk the ids, not the map.
  std::vector<uint64_t> ids;
  ids.reserve(sinks_.size());
  for (const auto& [id, sink] : sinks_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = sinks_.find(id);
    if (it == sinks_.end()) continue;
    Sink sink = it->second;  // a copy: it may be erased while it runs
    sink(e);
  }
}

std::string sse_frame(const Event& e) {
  std::string out = "event: " + e.type + "\n";
  // A data line may not hold a newline: each line of the JSON gets its own.
  size_t start = 0;
  while (true) {
    const size_t nl = e.data.find('\n', start);
    out += "data: ";
    out.append(e.data, start, nl == std::string::npos ? std::string::npos : nl - start);
    out += '\n';
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  out += '\n';
  return out;
}

}  // namespace luacs::nbi
