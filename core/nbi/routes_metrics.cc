// GET /metrics: the Prometheus text exposition format (0.0.4) of the
// running server (Services::metrics, read at scrape time from any thread)
// followed by the API's own series (requests, /events clients).
#include "core/nbi/api.h"

namespace luacs::nbi {

namespace {

void metrics(const ExchangePtr& x) {
  const auto& fn = x->api().services().metrics;
  std::string text = fn ? fn() : std::string();
  text += x->api().request_metrics();
  const EventHub& events = x->api().events();
  text +=
      "# HELP luacs_api_event_subscribers Clients of GET /events now.\n"
      "# TYPE luacs_api_event_subscribers gauge\n"
      "luacs_api_event_subscribers " +
      std::to_string(events.subscribers()) +
      "\n"
      "# HELP luacs_api_event_drops_total /events clients dropped for not keeping up.\n"
      "# TYPE luacs_api_event_drops_total counter\n"
      "luacs_api_event_drops_total " +
      std::to_string(events.dropped()) + "\n";
  x->reply(200, "text/plain; version=0.0.4; charset=utf-8", std::move(text));
}

}  // namespace

void add_metrics_routes(Router& r) {
  auto m = route("GET", "/metrics", Role::kRead, metrics);
  m.metrics = true;     // also open to [metrics] allow, without a token
  m.fleet_wide = true;  // a tag-scoped token sees one customer's devices, not the server
  r.add(std::move(m));
}

}  // namespace luacs::nbi
