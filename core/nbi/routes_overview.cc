// GET /overview (core/nbi/overview.h): the counts and breakdowns of the
// fleet or of a token's tag, answered from a cache kept fresh in the
// background.
#include "core/nbi/api.h"
#include "core/nbi/overview.h"
#include "core/nbi/scope.h"
#include "core/util/log.h"

namespace luacs::nbi {

namespace {

// A DeviceInfo leaf of either data model (TR-181 first), as the `model`
// and `software_version` filters of GET /devices read it.
std::string info(const std::string& leaf) {
  return "coalesce(parameters->'Device.DeviceInfo." + leaf +
         "'->>0, parameters->'InternetGatewayDevice.DeviceInfo." + leaf + "'->>0)";
}

// [{"value", "count"}...] from json_agg's [[value, count]...], with the
// groups past the top ones summed into one {"value": null, "other": true}.
nlohmann::json breakdown(std::string_view agg, int64_t groups, int64_t total) {
  nlohmann::json out = nlohmann::json::array();
  int64_t shown = 0;
  for (const auto& pair : nlohmann::json::parse(agg)) {
    const int64_t n = pair.at(1).get<int64_t>();
    out.push_back({{"value", pair.at(0)}, {"count", n}});
    shown += n;
  }
  if (groups > Overview::kTop && total > shown)
    out.push_back({{"value", nullptr}, {"count", total - shown}, {"other", true}});
  return out;
}

int64_t number(const PgReply& r, int col) {
  return r.is_null(0, col) ? 0 : std::stoll(std::string(r.get(0, col)));
}

void get_overview(const ExchangePtr& x) {
  if (!only_params(x, {})) return;
  Overview* o = x->api().overview();
  if (!o || !x->api().db()) return x->error(503, "no store", "no [store] dsn is configured");
  o->get(x, x->who().scope_tag);
}

}  // namespace

Overview::Overview(Api& api) : api_(api) {}

Overview::~Overview() = default;

void Overview::start() {
  if (api_.options().dsn.empty()) return;
  db_ = std::make_unique<Db>(api_.base(), api_.options().dsn, 1, "luacs-api-overview");
  db_->start();
  cache_[""].asked = Clock::now();  // computed at the first tick
}

void Overview::close() {
  if (db_) db_->close();
}

std::string Overview::sql(const std::string& scope, std::chrono::milliseconds online_window,
                          Params& params) {
  params.emplace_back(std::to_string(online_window.count()) + " milliseconds");
  std::string where = "true";
  if (!scope.empty()) {
    params.emplace_back(scope);
    where = "tags @> ARRAY[$2]::text[]";
  }
  const std::string top = std::to_string(kTop);
  // One pass over the devices for the counts and the two DeviceInfo
  // breakdowns (GROUPING SETS; GROUPING() is 1 for a model row, 2 for a
  // software row, 3 for the total), one over their tags.
  return "WITH g AS MATERIALIZED ("
         " SELECT GROUPING(model, sw) AS k, model, sw, count(*) AS n,"
         "  count(*) FILTER (WHERE last_inform >= now() - $1::interval) AS online,"
         "  count(*) FILTER (WHERE last_inform >= now() - interval '24 hours') AS informed,"
         "  count(*) FILTER (WHERE tags @> ARRAY['pending']::text[]) AS pending"
         " FROM (SELECT " +
         info("ModelName") + " AS model, " + info("SoftwareVersion") +
         " AS sw, last_inform, tags FROM devices WHERE " + where +
         ") d"
         " GROUP BY GROUPING SETS ((model), (sw), ())),"
         " t AS MATERIALIZED (SELECT tag, count(*) AS n FROM devices, unnest(tags) AS tag"
         "  WHERE " +
         where +
         " GROUP BY tag)"
         " SELECT (SELECT n FROM g WHERE k = 3), (SELECT online FROM g WHERE k = 3),"
         "  (SELECT informed FROM g WHERE k = 3), (SELECT pending FROM g WHERE k = 3),"
         "  (SELECT count(*) FROM devices WHERE " +
         where +
         " AND id IN (SELECT device_id FROM faults)),"
         "  (SELECT coalesce(json_agg(json_build_array(model, n) ORDER BY n DESC, model), '[]')"
         "   FROM (SELECT model, n FROM g WHERE k = 1 ORDER BY n DESC, model LIMIT " +
         top +
         ") s),"
         "  (SELECT count(*) FROM g WHERE k = 1),"
         "  (SELECT coalesce(json_agg(json_build_array(sw, n) ORDER BY n DESC, sw), '[]')"
         "   FROM (SELECT sw, n FROM g WHERE k = 2 ORDER BY n DESC, sw LIMIT " +
         top +
         ") s),"
         "  (SELECT count(*) FROM g WHERE k = 2),"
         "  (SELECT coalesce(json_agg(json_build_array(tag, n) ORDER BY n DESC, tag), '[]')"
         "   FROM (SELECT tag, n FROM t ORDER BY n DESC, tag LIMIT " +
         top +
         ") s),"
         "  (SELECT count(*) FROM t), (SELECT coalesce(sum(n), 0) FROM t), " +
         utc_sql("now()");
}

void Overview::get(const ExchangePtr& x, const std::string& scope) {
  const auto now = Clock::now();
  auto it = cache_.find(scope);
  if (it == cache_.end()) {
    if (cache_.size() >= kMaxScopes) {
      // Make room: the entry asked for least recently that nobody waits for.
      auto victim = cache_.end();
      for (auto e = cache_.begin(); e != cache_.end(); ++e)
        if (!e->second.running && e->second.waiters.empty() &&
            (victim == cache_.end() || e->second.asked < victim->second.asked))
          victim = e;
      if (victim != cache_.end()) cache_.erase(victim);
    }
    it = cache_.emplace(scope, Entry{}).first;
  }
  Entry& e = it->second;
  e.asked = now;
  if (!e.answer.empty()) {
    // Stale figures now (their "at" says how old) beat fresh ones later.
    x->reply(200, "application/json", e.answer);
    if (!e.running && now - e.at >= api_.options().overview_refresh) refresh(scope);
    return;
  }
  e.waiters.push_back(x);
  if (!e.running) refresh(scope);
}

void Overview::tick() {
  const auto now = Clock::now();
  for (auto it = cache_.begin(); it != cache_.end();) {
    Entry& e = it->second;
    if (!e.running && e.waiters.empty() && now - e.asked > kKeep) {
      it = cache_.erase(it);
      continue;
    }
    if (!e.running && (e.answer.empty() || now - e.at >= api_.options().overview_refresh))
      refresh(it->first);
    ++it;
  }
}

void Overview::refresh(const std::string& scope) {
  Entry& e = cache_[scope];
  Db* db = db_ && db_->available() ? db_.get() : api_.db();
  if (!db) return;
  e.running = true;
  Params params;
  auto text = sql(scope, api_.options().online_window, params);
  db->query(std::move(text), std::move(params),
            [this, scope, started = Clock::now()](PgReply r) { computed(scope, r, started); });
}

void Overview::computed(const std::string& scope, const PgReply& r, Clock::time_point started) {
  const auto it = cache_.find(scope);
  if (it == cache_.end()) return;
  Entry& e = it->second;
  e.running = false;
  auto waiters = std::move(e.waiters);
  e.waiters.clear();
  if (!r.ok() || r.rows() != 1) {
    if (!r.ok() && !r.connection_lost())
      log::warn("api: the overview query failed: " + store::first_line(r.error()));
    const auto err = r.ok() ? DbError{500, "internal error", "no overview row"} : db_error(r);
    for (const auto& x : waiters)
      if (x->alive()) x->error(err.status, err.error, err.detail);
    return;
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  const int64_t devices = number(r, 0);
  nlohmann::json j = {{"devices", devices},
                      {"online", number(r, 1)},
                      {"informed_24h", number(r, 2)},
                      {"pending", number(r, 3)},
                      {"faulty", number(r, 4)},
                      {"by_model", breakdown(r.get(0, 5), number(r, 6), devices)},
                      {"by_software", breakdown(r.get(0, 7), number(r, 8), devices)},
                      {"by_tag", breakdown(r.get(0, 9), number(r, 10), number(r, 11))},
                      {"at", std::string(r.get(0, 12))},
                      {"computed_in_ms", ms}};
  e.answer = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  e.at = Clock::now();
  if (log::enabled(log::Level::kDebug))
    log::debug("api: overview of " + (scope.empty() ? std::string("the fleet") : "tag " + scope) +
               " computed in " + std::to_string(ms) + " ms");
  for (const auto& x : waiters)
    if (x->alive()) x->reply(200, "application/json", e.answer);
}

void add_overview_routes(Router& r) {
  r.add(route("GET", "/overview", Role::kRead, get_overview));
}

}  // namespace luacs::nbi
