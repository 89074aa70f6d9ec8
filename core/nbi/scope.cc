#include "core/nbi/scope.h"

#include "core/nbi/api.h"

#include <algorithm>
#include <charconv>

namespace luacs::nbi {

std::string visible_sql(const Principal& who, std::string_view device_col, Params& params) {
  if (who.scope_tag.empty()) return "true";
  params.emplace_back(who.scope_tag);
  return "EXISTS (SELECT 1 FROM devices sd WHERE sd.id = " + std::string(device_col) +
         " AND sd.tags @> ARRAY[$" + std::to_string(params.size()) + "::text])";
}

void store_query(const ExchangePtr& x, std::string sql, Params params,
                 std::function<void(const PgReply&)> done) {
  Db* db = x->api().db();
  if (!db) return x->error(503, "no store", "no [store] dsn is configured");
  db->query(std::move(sql), std::move(params), [x, done = std::move(done)](PgReply r) {
    if (!x->alive()) return;
    if (!r.ok()) {
      const auto e = db_error(r);
      return x->error(e.status, e.error, e.detail);
    }
    done(r);
  });
}

bool only_params(const ExchangePtr& x, std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : x->query()) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string list;
    for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    x->error(400, "unknown parameter", "'" + name + "' (known: " + list + ")");
    return false;
  }
  return true;
}

std::optional<int64_t> page_limit(const ExchangePtr& x) {
  constexpr int64_t kDefault = 100, kMax = 10'000;
  const auto text = x->q("limit");
  if (!text) return kDefault;
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (ec != std::errc() || end != text->data() + text->size() || n < 1 || n > kMax) {
    x->error(400, "bad parameter", "'limit' must be an integer from 1 to 10000");
    return std::nullopt;
  }
  return n;
}

std::string utc_sql(std::string_view col) {
  return "to_char(" + std::string(col) +
         " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

}  // namespace luacs::nbi
