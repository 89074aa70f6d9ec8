// GET /events: Server-Sent Events of session ends, faults, task results,
// policy reloads and job progress (core/nbi/events.h), filtered by
// ?device= and ?tag= and by the token's scope.
//
// A subscriber that stops reading must never slow anything down: its
// unsent output is bounded by [nbi] event_buffer, and the event that would
// go over it is replaced by a final "dropped" event and the end of the
// stream.
#include <algorithm>
#include <chrono>

#include "core/nbi/api.h"

namespace luacs::nbi {

namespace {

constexpr std::chrono::seconds kHeartbeat{15};

struct Subscriber {
  ExchangePtr x;
  uint64_t id = 0;
  std::string device, tag, scope;
  loop::Event heartbeat;
  bool done = false;
};
using SubscriberPtr = std::shared_ptr<Subscriber>;

bool has_tag(const Event& e, const std::string& tag) {
  return std::find(e.tags.begin(), e.tags.end(), tag) != e.tags.end();
}

// The token's scope and ?tag= need the device's tag (a fleet event carries
// none: only unscoped tokens see it); ?device= needs that device.
bool wanted(const Subscriber& s, const Event& e) {
  if (!s.scope.empty() && !has_tag(e, s.scope)) return false;
  if (!s.device.empty() && e.device_id != s.device) return false;
  if (!s.tag.empty() && !e.device_id.empty() && !has_tag(e, s.tag)) return false;
  return true;
}

void stop(Api& api, Subscriber& s) {
  if (s.done) return;
  s.done = true;
  s.heartbeat.reset();
  api.events().unsubscribe(s.id);
}

void send(const SubscriberPtr& s, const Event& e) {
  if (s->done || !wanted(*s, e)) return;
  Api& api = s->x->api();
  const std::string frame = sse_frame(e);
  // One event always goes into an empty buffer, however large.
  const size_t buffered = s->x->buffered();
  if (buffered > 0 && buffered + frame.size() > api.options().event_buffer) {
    api.events().count_dropped();
    s->x->write(sse_frame(Event{"dropped",
                                "",
                                {},
                                "{\"reason\":\"the client did not keep up; over [nbi] "
                                "event_buffer bytes were waiting for it\"}"}));
    s->x->end_stream();
    stop(api, *s);
    return;
  }
  if (!s->x->write(frame)) stop(api, *s);
}

void on_heartbeat(evutil_socket_t, short, void* arg) {
  auto* s = static_cast<Subscriber*>(arg);
  if (s->x->buffered() < s->x->api().options().event_buffer) s->x->write(": heartbeat\n\n");
}

void events(const ExchangePtr& x) {
  for (const auto& [k, v] : x->query())
    if (k != "device" && k != "tag")
      return x->error(400, "unknown parameter", "'" + k + "' (known: device, tag)");
  auto s = std::make_shared<Subscriber>();
  s->x = x;
  s->device = x->q("device").value_or("");
  s->tag = x->q("tag").value_or("");
  s->scope = x->who().scope_tag;
  Api& api = x->api();
  x->begin_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
  if (!x->alive()) return;  // HEAD: the head was the whole answer
  x->write(": luacs events\n\n");
  s->id = api.events().subscribe([s](const Event& e) { send(s, e); });
  x->on_gone([s, &api] { stop(api, *s); });
  s->heartbeat.reset(event_new(api.base(), -1, EV_PERSIST, &on_heartbeat, s.get()));
  const timeval every = loop::to_timeval(kHeartbeat);
  event_add(s->heartbeat.get(), &every);
}

}  // namespace

void add_event_routes(Router& r) {
  r.add(route("GET", "/events", Role::kRead, events));
}

}  // namespace luacs::nbi
