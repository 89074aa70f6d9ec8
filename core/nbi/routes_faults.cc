// GET /faults, DELETE /faults/{device}/{source}, GET /sessions: what went
// wrong on a device, and its session log (docs/nbi.md).
//
// A fault is one row per device and source ("task", "policy", ...), written
// by the session's batch (core/store/session_batch.cc): a repeat bumps its
// retries. Nothing in a session reads faults, so a policy hook runs again at
// every session whatever its fault; clearing one means the next failure is
// recorded afresh (retries 0) and the fault list shows only what still
// fails.
#include "core/nbi/api.h"
#include "core/nbi/scope.h"
#include "core/nbi/task_body.h"
#include "core/util/hex.h"

namespace luacs::nbi {

namespace {

// The cursor of a fault page: hex(device) "." hex(source).
std::string fault_cursor(std::string_view device, std::string_view source) {
  auto hex = [](std::string_view s) {
    return util::to_hex(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  return hex(device) + "." + hex(source);
}

std::optional<std::pair<std::string, std::string>> parse_fault_cursor(std::string_view c) {
  auto unhex = [](std::string_view h) -> std::optional<std::string> {
    if (h.size() % 2) return std::nullopt;
    std::string out;
    for (size_t i = 0; i < h.size(); i += 2) {
      const int hi = util::hex_value(h[i]), lo = util::hex_value(h[i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
    }
    return out;
  };
  const auto dot = c.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto device = unhex(c.substr(0, dot)), source = unhex(c.substr(dot + 1));
  if (!device || !source) return std::nullopt;
  return std::pair{*device, *source};
}

void list_faults(const ExchangePtr& x) {
  if (!only_params(x, {"device", "source", "limit", "after"})) return;
  const auto limit = page_limit(x);
  if (!limit) return;
  Params p;
  std::string where;
  if (auto after = x->q("after")) {
    auto key = parse_fault_cursor(*after);
    if (!key) return x->error(400, "bad parameter", "'after' must be the 'next' of a fault page");
    p.emplace_back(key->first);
    p.emplace_back(key->second);
    where += " AND (f.device_id, f.source) > ($" + std::to_string(p.size() - 1) + "::text, $" +
             std::to_string(p.size()) + "::text)";
  }
  if (auto device = x->q("device")) {
    p.emplace_back(*device);
    where += " AND f.device_id = $" + std::to_string(p.size());
  }
  if (auto source = x->q("source")) {
    p.emplace_back(*source);
    where += " AND f.source = $" + std::to_string(p.size());
  }
  const std::string visible = visible_sql(x->who(), "f.device_id", p);
  std::string sql =
      "SELECT f.device_id, f.source, json_build_object('device', f.device_id, 'source', f.source,"
      " 'code', f.code, 'message', f.message, 'detail', f.detail, 'retries', f.retries,"
      " 'first_seen', " +
      utc_sql("f.first_seen") + ", 'last_seen', " + utc_sql("f.last_seen") +
      ")::text FROM faults f WHERE " + visible + where + " ORDER BY f.device_id, f.source LIMIT " +
      std::to_string(*limit);
  store_query(x, std::move(sql), std::move(p), [x, limit = *limit](const PgReply& r) {
    std::string out = "{\"faults\": [";
    for (int i = 0; i < r.rows(); ++i) {
      if (i) out += ", ";
      out += r.get(i, 2);
    }
    out += "], \"next\": ";
    out += r.rows() == limit
               ? "\"" + fault_cursor(r.get(r.rows() - 1, 0), r.get(r.rows() - 1, 1)) + "\""
               : std::string("null");
    out += "}\n";
    x->reply(200, "application/json", std::move(out));
  });
}

// Clearing tells the device's cached copy to go too (NOTIFY luacs_task), so
// a session never works from a device that still holds the fault.
void delete_fault(const ExchangePtr& x) {
  Params p = {x->param(0), x->param(1)};
  const std::string visible = visible_sql(x->who(), "f.device_id", p);
  std::string sql =
      "WITH f AS (SELECT f.device_id, f.source, " + visible +
      " AS ok FROM faults f WHERE f.device_id = $1 AND f.source = $2),"
      " del AS (DELETE FROM faults x USING f WHERE x.device_id = f.device_id"
      "  AND x.source = f.source AND f.ok RETURNING x.device_id)"
      " SELECT f.ok,"
      "  (SELECT count(*) FROM (SELECT pg_notify('luacs_task', device_id) FROM del) n)"
      " FROM f";
  store_query(x, std::move(sql), std::move(p), [x](const PgReply& r) {
    if (r.rows() == 0)
      return x->error(404, "no such fault",
                      "device '" + x->param(0) + "' has no fault of source '" + x->param(1) + "'");
    if (r.get(0, 0) != "t")
      return x->error(403, "forbidden",
                      "token '" + x->who().name + "' is scoped to tag '" + x->who().scope_tag +
                          "'; the device does not carry it");
    if (r.get(0, 1) == "0")  // cleared by another request meanwhile
      return x->error(404, "no such fault", "the fault was cleared meanwhile");
    x->json(200, {{"device", x->param(0)}, {"source", x->param(1)}, {"deleted", true}});
  });
}

void list_sessions(const ExchangePtr& x) {
  if (!only_params(x, {"device", "since", "limit"})) return;
  const auto limit = page_limit(x);
  if (!limit) return;
  Params p;
  std::string where;
  if (auto device = x->q("device")) {
    p.emplace_back(*device);
    where += " AND s.device_id = $" + std::to_string(p.size());
  }
  if (auto since = x->q("since")) {
    auto ms = parse_rfc3339(*since);
    if (!ms)
      return x->error(400, "bad parameter",
                      "'since' must be an RFC 3339 time, e.g. 2026-12-03T00:00:00Z");
    p.emplace_back(std::to_string(*ms));
    where += " AND s.at >= to_timestamp($" + std::to_string(p.size()) + "::float8 / 1000)";
  }
  const std::string visible = visible_sql(x->who(), "s.device_id", p);
  std::string sql = "SELECT json_build_object('device', s.device_id, 'at', " + utc_sql("s.at") +
                    ", 'summary', s.summary)::text FROM session_log s WHERE " + visible + where +
                    " ORDER BY s.at DESC LIMIT " + std::to_string(*limit);
  store_query(x, std::move(sql), std::move(p), [x](const PgReply& r) {
    std::string out = "{\"sessions\": [";
    for (int i = 0; i < r.rows(); ++i) {
      if (i) out += ", ";
      out += r.get(i, 0);
    }
    out += "]}\n";
    x->reply(200, "application/json", std::move(out));
  });
}

}  // namespace

void add_fault_and_session_routes(Router& r) {
  r.add(route("GET", "/faults", Role::kRead, list_faults));
  r.add(route("DELETE", "/faults/{device}/{source}", Role::kOperate, delete_fault));
  r.add(route("GET", "/sessions", Role::kRead, list_sessions));
}

}  // namespace luacs::nbi
