// The live events of GET /events: what producers anywhere in the server
// publish, fanned out to the subscribers on the API's loop.
//
// A producer (a CWMP worker at a session's end, the main thread after a
// policy reload, API code for job progress) first asks active() -- one
// relaxed atomic load -- and builds nothing while nobody listens. publish()
// never waits on the API: it posts the event to the API's loop (a
// mutex-protected mailbox) and returns.
//
// Event types: "session" (a session ended), "fault" (a fault it raised),
// "task" (a task result), "policy" (a reload, ok or not), "job" (bulk job
// progress). docs/nbi.md documents their data.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/loop/loop.h"

namespace luacs::nbi {

struct Event {
  std::string type;
  // The device it is about; "" for a fleet event (a policy reload, a job).
  std::string device_id;
  // The device's tags: a subscriber whose token is scoped to a tag, or who
  // asked for ?tag=, sees a device event only when its tag is here.
  std::vector<std::string> tags;
  std::string data;  // one line of JSON
};

class EventHub {
 public:
  using Sink = std::function<void(const Event&)>;

  // Any thread: whether anyone listens (check before building an event).
  bool active() const { return active_.load(std::memory_order_acquire); }
  // The flag behind active(), for a producer that checks it itself
  // (server::Server::set_session_observer).
  const std::atomic<bool>* active_flag() const { return &active_; }

  // Any thread: hands the event to the subscribers. Dropped when nobody
  // listens, or before the API's loop runs.
  void publish(std::string type, std::string device_id, std::vector<std::string> tags,
               std::string json);
  void publish(Event e);
  // Any thread: runs fn on the API's loop, for a producer that would rather
  // build its events there than on its own thread (fn then publishes).
  void later(std::function<void()> fn);

  // ---- the API's loop
  void set_executor(loop::Executor exec) { exec_ = std::move(exec); }
  uint64_t subscribe(Sink sink);
  void unsubscribe(uint64_t id);
  size_t subscribers() const { return sinks_.size(); }
  // A subscriber dropped for not keeping up (counted for /metrics).
  void count_dropped() { ++dropped_; }
  uint64_t dropped() const { return dropped_; }

 private:
  void deliver(const Event& e);

  std::atomic<bool> active_{false};
  loop::Executor exec_;  // set before the first subscriber, then read-only
  std::map<uint64_t, Sink> sinks_;
  uint64_t last_id_ = 0;
  uint64_t dropped_ = 0;
};

// The SSE frame of an event: "event: <type>\ndata: <json>\n\n".
std::string sse_frame(const Event& e);

}  // namespace luacs::nbi
