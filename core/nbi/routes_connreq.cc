// POST /devices/{id}/connection_request: wake a device now (docs/nbi.md,
// "Connection requests"). The request itself runs in core/connreq, on its
// own thread; this route checks the device and the token's scope, asks for
// the wake, and answers once the device's session started (200) or the
// request failed (504).
#include <charconv>

#include "core/nbi/api.h"
#include "core/nbi/scope.h"
#include "core/nbi/wake.h"

namespace luacs::nbi {

std::optional<std::chrono::milliseconds> wake_timeout(const ExchangePtr& x) {
  const auto t = x->q("timeout");
  if (!t) return kWakeDefault;
  int64_t ms = 0;
  const auto [end, ec] = std::from_chars(t->data(), t->data() + t->size(), ms);
  if (ec != std::errc() || end != t->data() + t->size() || ms < 1 || ms > kWakeMax.count()) {
    x->error(400, "bad parameter", "'timeout' is a number of milliseconds, 1..120000");
    return std::nullopt;
  }
  return std::chrono::milliseconds{ms};
}

void wake_device(const ExchangePtr& x, const std::string& device, std::chrono::milliseconds wait,
                 std::function<void(const WakeAnswer&)> then) {
  const auto& wake = x->api().services().wake;
  if (!wake) return x->error(501, "not available", "this server sends no connection requests");
  auto back = x->api().executor();
  wake(device, wait, [back, x, then = std::move(then)](WakeAnswer a) {
    back([x, then, a = std::move(a)] {
      if (x->alive()) then(a);
    });
  });
}

nlohmann::json wake_json(const WakeAnswer& a) {
  nlohmann::json j = {{"outcome", a.outcome}, {"detail", a.detail}};
  j["http_status"] = a.http_status ? nlohmann::json(a.http_status) : nlohmann::json(nullptr);
  j["latency_ms"] = a.latency_ms >= 0 ? nlohmann::json(a.latency_ms) : nlohmann::json(nullptr);
  j["attempt"] = a.attempt ? nlohmann::json(a.attempt) : nlohmann::json(nullptr);
  j["transport"] = a.transport.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.transport);
  return j;
}

void answer_not_woken(const ExchangePtr& x, const WakeAnswer& a) {
  static const std::pair<const char*, const char*> kReasons[] = {
      {"answered", "no session"},
      {"sent", "no session"},
      {"auth_failed", "auth failed"},
      {"offline", "offline"},
      {"timed_out", "timed out"},
      {"denied", "denied target"},
      {"no_url", "no connection request URL"},
      {"error", "bad answer"},
      {"unavailable", "unavailable"}};
  std::string reason = a.outcome;
  for (const auto& [outcome, text] : kReasons)
    if (a.outcome == outcome) reason = text;
  nlohmann::json j = wake_json(a);
  j["error"] = reason;
  x->json(a.outcome == "unavailable" ? 503 : 504, j);
}

namespace {

void connection_request(const ExchangePtr& x) {
  if (!only_params(x, {"timeout"})) return;
  const auto wait = wake_timeout(x);
  if (!wait) return;
  auto wake = [x, wait = *wait](bool visible) {
    if (!visible)
      return x->error(403, "forbidden",
                      "token '" + x->who().name + "' is scoped to tag '" + x->who().scope_tag +
                          "'; the device does not carry it");
    wake_device(x, x->param(0), wait, [x](const WakeAnswer& a) {
      if (!a.session_started) return answer_not_woken(x, a);
      x->json(200, wake_json(a));
    });
  };
  // A device the server has in memory needs no PostgreSQL read (the
  // help desk's device has usually just called in).
  if (const auto& cached = x->api().services().cached_device)
    if (const auto d = cached(x->param(0)))
      return wake(x->who().scope_tag.empty() || d->tags.count(x->who().scope_tag) > 0);
  Params p = {x->param(0)};
  const std::string visible = visible_sql(x->who(), "dv.id", p);
  store_query(x, "SELECT " + visible + " FROM devices dv WHERE dv.id = $1", std::move(p),
              [x, wake](const PgReply& r) {
                if (r.rows() == 0)
                  return x->error(404, "no such device",
                                  "'" + x->param(0) + "' has not informed (or was deleted)");
                wake(r.get(0, 0) == "t");
              });
}

// GET /devices/{id}/connection_requests: the device's attempts, newest
// first.
void attempts(const ExchangePtr& x) {
  if (!only_params(x, {"limit"})) return;
  const auto limit = page_limit(x);
  if (!limit) return;
  Params p = {x->param(0)};
  const std::string visible = visible_sql(x->who(), "dv.id", p);
  std::string sql =
      "SELECT (SELECT " + visible +
      " FROM devices dv WHERE dv.id = $1),"
      " (SELECT coalesce(json_agg(json_build_object('id', c.id, 'transport', c.transport,"
      "  'requested', " +
      utc_sql("c.requested") + ", 'finished', " + utc_sql("c.finished") +
      ", 'outcome', c.outcome, 'http_status', c.http_status, 'detail', c.detail,"
      "  'informed', " +
      utc_sql("c.informed") +
      ", 'latency_ms', c.latency_ms) ORDER BY c.id DESC), '[]')::text"
      "  FROM (SELECT * FROM connection_requests WHERE device_id = $1 ORDER BY id DESC LIMIT " +
      std::to_string(*limit) + ") c)";
  store_query(x, std::move(sql), std::move(p), [x](const PgReply& r) {
    if (r.is_null(0, 0))
      return x->error(404, "no such device",
                      "'" + x->param(0) + "' has not informed (or was deleted)");
    if (r.get(0, 0) != "t")
      return x->error(403, "forbidden",
                      "token '" + x->who().name + "' is scoped to tag '" + x->who().scope_tag +
                          "'; the device does not carry it");
    x->reply(200, "application/json",
             "{\"connection_requests\": " + std::string(r.get(0, 1)) + "}\n");
  });
}

}  // namespace

void add_connreq_routes(Router& r) {
  r.add(route("POST", "/devices/{id}/connection_request", Role::kOperate, connection_request));
  r.add(route("GET", "/devices/{id}/connection_requests", Role::kRead, attempts));
}

}  // namespace luacs::nbi
