// GET/HEAD /devices (filters, projection, sort, keyset pages, CSV export),
// GET and DELETE /devices/{id}, PUT and DELETE /devices/{id}/tags/{tag}.
//
// Every value from the request reaches SQL as a $n parameter: filters
// through core/nbi/filter.h, field names and sort keys only after they were
// matched against the fixed lists below. A token scoped to a tag sees only
// devices carrying it (one more `tags @>` term) and gets 403 for any other.
//
// Pages are keyset: ORDER BY (sort column, id), and the cursor carries the
// last row's sort value and id, so page N costs what page 1 does. Only the
// id has an index to walk; last_inform and first_seen sorts are full sorts
// on purpose (an index on a column each Inform updates would cost the
// Inform path its HOT updates; docs/nbi.md).
#include <algorithm>
#include <array>

#include "core/nbi/api.h"
#include "core/nbi/filter.h"
#include "core/util/log.h"

namespace luacs::nbi {

namespace {

constexpr int kDefaultLimit = 100;
constexpr int kMaxLimit = 10'000;
constexpr size_t kMaxFields = 40;  // json_build_object takes at most 100 arguments
constexpr int kCsvPage = 5'000;
// A CSV export fetches its next page only while less than this waits for
// the client: memory stays at one page plus this, however slow the client.
constexpr size_t kCsvBudget = 1 << 20;
constexpr size_t kMaxTag = 128;
constexpr int kSessionsShown = 20;
const std::vector<std::string_view> kListParams = {"fields", "sort", "limit", "after"};
const std::vector<std::string_view> kCsvDefault = {
    "id", "oui", "product_class", "serial_number", "last_inform", "tags"};

// ---- time and errors

// RFC 3339 in UTC, to the second (what every answer shows).
std::string utc(const std::string& col) {
  return "to_char(" + col + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}
// The same to the microsecond: a cursor must hold the exact value.
std::string utc_exact(const std::string& col) {
  return "to_char(" + col + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
}

// A value PostgreSQL refuses (invalid UTF-8, a time out of its range) is the
// request's fault, not the server's.
void answer_db_error(const ExchangePtr& x, const PgReply& r) {
  if (r.sqlstate().starts_with("22"))
    return x->error(400, "bad value", store::first_line(r.error()));
  const auto e = db_error(r);
  x->error(e.status, e.error, e.detail);
}

Db* db_or_503(const ExchangePtr& x) {
  Db* db = x->api().db();
  if (!db) x->error(503, "no store", "devices live in PostgreSQL and no [store] dsn is configured");
  return db;
}

// ---- fields

enum class Kind { kText, kTime, kArray };
struct Column {
  std::string_view name;
  Kind kind;
};
constexpr std::array<Column, 13> kColumns = {{{"id", Kind::kText},
                                              {"oui", Kind::kText},
                                              {"product_class", Kind::kText},
                                              {"serial_number", Kind::kText},
                                              {"manufacturer", Kind::kText},
                                              {"data_model_root", Kind::kText},
                                              {"first_seen", Kind::kTime},
                                              {"last_inform", Kind::kTime},
                                              {"last_boot", Kind::kTime},
                                              {"last_bootstrap", Kind::kTime},
                                              {"remote_address", Kind::kText},
                                              {"last_events", Kind::kArray},
                                              {"tags", Kind::kArray}}};
constexpr std::string_view kParam = "param.";

const Column* column(std::string_view name) {
  for (const auto& c : kColumns)
    if (c.name == name) return &c;
  return nullptr;
}

// A field's value for JSON (any type json_build_object renders) or as CSV
// text. `name` is a known column or "param.<Name>".
std::string field_sql(const std::string& name, bool csv, SqlParams& params) {
  if (const Column* c = column(name)) {
    const std::string col(c->name);
    if (c->kind == Kind::kTime) return utc(col);
    if (c->kind == Kind::kArray && csv) return "array_to_json(" + col + ")::text";
    return col;
  }
  params.emplace_back(name.substr(kParam.size()));
  return "(parameters->$" + std::to_string(params.size()) + (csv ? "::text->>0)" : "::text->0)");
}

// fields=a,b,param.X: known names, duplicates dropped; nullopt after a 400.
std::optional<std::vector<std::string>> parse_fields(const ExchangePtr& x,
                                                     const std::vector<std::string_view>& dflt) {
  std::vector<std::string> out;
  const auto given = x->q("fields");
  if (!given) {
    for (auto f : dflt) out.emplace_back(f);
    return out;
  }
  std::string unknown;
  std::string_view rest = *given;
  while (true) {
    const auto comma = rest.find(',');
    const std::string f(rest.substr(0, comma));
    const bool ok = column(f) || (f.size() > kParam.size() && f.starts_with(kParam));
    if (!ok) unknown += (unknown.empty() ? "'" : ", '") + f + "'";
    if (ok && std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!unknown.empty()) {
    std::string known;
    for (const auto& c : kColumns) known += std::string(c.name) + ", ";
    x->error(400, "unknown field", unknown + " (known: " + known + "param.<Name>)");
    return std::nullopt;
  }
  if (out.size() > kMaxFields) {
    x->error(400, "too many fields", "at most " + std::to_string(kMaxFields));
    return std::nullopt;
  }
  return out;
}

// ---- sort and cursor

struct Sort {
  std::string name;    // as given: "-last_inform"
  std::string column;  // "last_inform"
  bool desc = false;
  bool by_id() const { return column == "id"; }
};

std::optional<Sort> parse_sort(std::string_view s) {
  Sort out{std::string(s), "", s.starts_with('-')};
  if (out.desc) s.remove_prefix(1);
  if (s != "id" && s != "last_inform" && s != "first_seen") return std::nullopt;
  out.column = std::string(s);
  return out;
}

struct Cursor {
  std::string value;  // the sort column's exact value ("" when sorted by id)
  std::string id;
};

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) out += kB64[(acc >> (bits -= 6)) & 63];
  }
  if (bits > 0) out += kB64[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> unbase64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const auto v = kB64.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) out += static_cast<char>((acc >> (bits -= 8)) & 0xff);
  }
  return out;
}

// Opaque to clients: base64url of {"s": sort, "v": value, "id": id}. The
// sort is in it so a cursor is not reused under another order.
std::string encode_cursor(const Sort& sort, const Cursor& c) {
  nlohmann::json j = {{"s", sort.name}, {"id", c.id}};
  if (!sort.by_id()) j["v"] = c.value;
  return base64url(j.dump());
}

std::optional<Cursor> decode_cursor(const Sort& sort, std::string_view text) {
  const auto raw = unbase64url(text);
  if (!raw) return std::nullopt;
  const auto j = nlohmann::json::parse(*raw, nullptr, false);
  if (!j.is_object() || !j.contains("s") || !j["s"].is_string() || j["s"] != sort.name ||
      !j.contains("id") || !j["id"].is_string())
    return std::nullopt;
  Cursor c{"", j["id"].get<std::string>()};
  if (!sort.by_id()) {
    if (!j.contains("v") || !j["v"].is_string() || !is_rfc3339(j["v"].get<std::string>()))
      return std::nullopt;
    c.value = j["v"].get<std::string>();
  }
  return c;
}

// ---- the selection

struct Selection {
  DeviceFilter filter;
  std::vector<std::string> fields;
  Sort sort;
  int limit = kDefaultLimit;
  std::optional<Cursor> after;
};

std::optional<int> parse_limit(const std::string& s) {
  const auto digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
  if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), digit)) return std::nullopt;
  const int n = std::stoi(s);
  if (n < 1 || n > kMaxLimit) return std::nullopt;
  return n;
}

// The list's query parameters; nullopt after a 400.
std::optional<Selection> parse_selection(const ExchangePtr& x,
                                         const std::vector<std::string_view>& default_fields) {
  auto parsed = parse_filter(x->query(), kListParams);
  if (!parsed.filter) {
    x->error(400, "bad filter", parsed.error);
    return std::nullopt;
  }
  Selection s;
  s.filter = std::move(*parsed.filter);
  auto fields = parse_fields(x, default_fields);
  if (!fields) return std::nullopt;
  s.fields = std::move(*fields);
  auto sort = parse_sort(x->q("sort").value_or("id"));
  if (!sort) {
    x->error(400, "bad sort", "sort is id, last_inform or first_seen, '-' first for descending");
    return std::nullopt;
  }
  s.sort = std::move(*sort);
  if (auto l = x->q("limit")) {
    auto n = parse_limit(*l);
    if (!n) {
      x->error(400, "bad limit", "limit is 1 to " + std::to_string(kMaxLimit));
      return std::nullopt;
    }
    s.limit = *n;
  }
  if (auto a = x->q("after")) {
    s.after = decode_cursor(s.sort, *a);
    if (!s.after) {
      x->error(400, "bad cursor", "'after' is not a cursor this listing (with this sort) gave");
      return std::nullopt;
    }
  }
  return s;
}

std::string where_sql(const ExchangePtr& x, const DeviceFilter& f, SqlParams& params) {
  return filter_sql(f, x->who().scope_tag, x->api().options().online_window, params);
}

// One page: columns 0 = the cursor's sort value, 1 = id, then the answer's
// cells (one json object, or one text per field for CSV).
std::string page_sql(const ExchangePtr& x, const Selection& s, const std::optional<Cursor>& after,
                     int rows, bool csv, SqlParams& params) {
  std::string cells;
  if (csv) {
    for (const auto& f : s.fields) cells += ", " + field_sql(f, true, params);
  } else {
    std::string args;
    for (const auto& f : s.fields) {
      params.emplace_back(f);
      args += (args.empty() ? "$" : ", $") + std::to_string(params.size()) + "::text, ";
      args += field_sql(f, false, params);
    }
    cells = ", json_build_object(" + args + ")::text";
  }
  const std::string col = s.sort.column;
  const std::string key = s.sort.by_id() ? "''" : utc_exact(col);
  std::string where = where_sql(x, s.filter, params);
  const char* cmp = s.sort.desc ? " < " : " > ";
  if (after) {
    params.emplace_back(after->id);
    const auto id = "$" + std::to_string(params.size());
    if (s.sort.by_id()) {
      where += " AND id" + std::string(cmp) + id;
    } else {
      params.emplace_back(after->value);
      where += " AND (" + col + ", id)" + cmp + "($" + std::to_string(params.size()) +
               "::timestamptz, " + id + ")";
    }
  }
  const std::string dir = s.sort.desc ? " DESC" : "";
  const std::string order = s.sort.by_id() ? "id" + dir : col + dir + ", id" + dir;
  params.emplace_back(std::to_string(rows));
  return "SELECT " + key + ", id" + cells + " FROM devices WHERE " + where + " ORDER BY " + order +
         " LIMIT $" + std::to_string(params.size());
}

Cursor cursor_of(const PgReply& r, int row) {
  return {std::string(r.get(row, 0)), std::string(r.get(row, 1))};
}

// ---- CSV

void csv_cell(std::string& out, std::string_view v) {
  if (v.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

// The whole selection, a page at a time: the next page is fetched only
// when the client has taken what was written (bounded memory), and the
// export stops when the client goes away.
class CsvExport : public std::enable_shared_from_this<CsvExport> {
 public:
  CsvExport(ExchangePtr x, Selection s) : x_(std::move(x)), s_(std::move(s)), after_(s_.after) {}

  void fetch() {
    SqlParams params;
    auto sql = page_sql(x_, s_, after_, kCsvPage, true, params);
    x_->api().db()->query(std::move(sql), std::move(params),
                          [self = shared_from_this()](PgReply r) { self->on_page(r); });
  }

 private:
  void on_page(const PgReply& r) {
    if (!x_->alive()) return;
    if (!r.ok()) {
      if (!begun_) return answer_db_error(x_, r);
      // Mid-export: what was sent stays sent; the log says why it ended.
      log::error("api: CSV export of devices ended early: " + r.error());
      return x_->end_stream();
    }
    if (!begun_) begin();
    std::string out;
    for (int i = 0; i < r.rows(); ++i) {
      for (size_t c = 0; c < s_.fields.size(); ++c) {
        if (c) out += ',';
        const int col = static_cast<int>(c) + 2;
        if (!r.is_null(i, col)) csv_cell(out, r.get(i, col));
      }
      out += "\r\n";
    }
    x_->write(out);
    if (r.rows() < kCsvPage) return x_->end_stream();
    after_ = cursor_of(r, r.rows() - 1);
    if (x_->buffered() < kCsvBudget) return fetch();
    x_->on_drained([self = shared_from_this()] { self->fetch(); });
  }

  void begin() {
    begun_ = true;
    x_->begin_stream(200, "text/csv; charset=utf-8",
                     {{"Content-Disposition", "attachment; filename=\"devices.csv\""}});
    std::string head;
    for (size_t c = 0; c < s_.fields.size(); ++c) {
      if (c) head += ',';
      csv_cell(head, s_.fields[c]);
    }
    x_->write(head + "\r\n");
  }

  ExchangePtr x_;
  Selection s_;
  std::optional<Cursor> after_;
  bool begun_ = false;
};

// ---- routes

std::vector<std::string_view> all_columns() {
  std::vector<std::string_view> out;
  for (const auto& c : kColumns) out.push_back(c.name);
  return out;
}

bool wants_csv(const ExchangePtr& x) {
  return x->head().header("Accept").find("text/csv") != std::string_view::npos;
}

void list(const ExchangePtr& x) {
  const bool csv = wants_csv(x);
  auto s = parse_selection(x, csv ? kCsvDefault : all_columns());
  if (!s) return;
  if (!db_or_503(x)) return;
  if (csv) return std::make_shared<CsvExport>(x, std::move(*s))->fetch();
  SqlParams params;
  // One row more than asked says whether there is a next page.
  auto sql = page_sql(x, *s, s->after, s->limit + 1, false, params);
  x->api().db()->query(
      std::move(sql), std::move(params), [x, sort = s->sort, limit = s->limit](PgReply r) {
        if (!x->alive()) return;
        if (!r.ok()) return answer_db_error(x, r);
        const int n = std::min(r.rows(), limit);
        std::string body = "{\"devices\":[";
        for (int i = 0; i < n; ++i) {
          if (i) body += ',';
          body += r.get(i, 2);
        }
        body += "],\"next\":";
        body += r.rows() > limit ? "\"" + encode_cursor(sort, cursor_of(r, n - 1)) + "\"" : "null";
        x->reply(200, "application/json", body + "}\n");
      });
}

void count(const ExchangePtr& x) {
  auto parsed = parse_filter(x->query(), kListParams);
  if (!parsed.filter) return x->error(400, "bad filter", parsed.error);
  if (!db_or_503(x)) return;
  SqlParams params;
  auto sql = "SELECT count(*) FROM devices WHERE " + where_sql(x, *parsed.filter, params);
  x->api().db()->query(std::move(sql), std::move(params), [x](PgReply r) {
    if (!x->alive()) return;
    if (!r.ok()) return answer_db_error(x, r);
    x->reply(200, "application/json", "", {{"X-Total-Count", std::string(r.get(0, 0))}});
  });
}

// `$2`: the caller's scope tag ("" for none). The first column says whether
// the device is in scope.
constexpr std::string_view kInScope = "($2 = '' OR d.tags @> ARRAY[$2]::text[])";

std::string device_sql() {
  const std::string p = "to_timestamp((p.value->>2)::float8)";
  return "SELECT " + std::string(kInScope) +
         ", json_build_object("
         "'id', d.id, 'oui', d.oui, 'product_class', d.product_class,"
         " 'serial_number', d.serial_number, 'manufacturer', d.manufacturer,"
         " 'data_model_root', d.data_model_root, 'first_seen', " +
         utc("d.first_seen") + ", 'last_inform', " + utc("d.last_inform") + ", 'last_boot', " +
         utc("d.last_boot") + ", 'last_bootstrap', " + utc("d.last_bootstrap") +
         ", 'online', d.last_inform >= now() - $4::interval,"
         " 'remote_address', d.remote_address, 'last_events', d.last_events, 'tags', d.tags,"
         " 'parameters', (SELECT coalesce(json_object_agg(p.key, json_build_object("
         "'value', p.value->0, 'type', p.value->1, 'read_at', " +
         utc(p) +
         ") ORDER BY p.key), '{}') FROM jsonb_each(d.parameters) p WHERE starts_with(p.key, $3)),"
         " 'faults', (SELECT coalesce(json_agg(json_build_object('source', f.source, 'code', "
         "f.code,"
         " 'message', f.message, 'detail', f.detail, 'retries', f.retries, 'first_seen', " +
         utc("f.first_seen") + ", 'last_seen', " + utc("f.last_seen") +
         ") ORDER BY f.source), '[]') FROM faults f WHERE f.device_id = d.id),"
         " 'tasks', (SELECT coalesce(json_agg(json_build_object('id', t.id, 'name', t.name,"
         " 'args', t.args, 'created', " +
         utc("t.created") + ", 'expires', " + utc("t.expires") +
         ", 'unique_key', t.unique_key) ORDER BY t.id), '[]') FROM tasks t"
         " WHERE t.device_id = d.id AND t.state = 'pending'),"
         " 'sessions', (SELECT coalesce(json_agg(json_build_object('at', " +
         utc("s.at") +
         ", 'summary', s.summary) ORDER BY s.at DESC), '[]') FROM (SELECT at, summary"
         " FROM session_log WHERE device_id = d.id ORDER BY at DESC LIMIT " +
         std::to_string(kSessionsShown) +
         ") s),"
         " 'client_certificate', (SELECT json_build_object('subject', c.subject, 'issuer',"
         " c.issuer, 'serial', c.serial, 'sha256', c.sha256, 'not_after', " +
         utc("c.not_after") + ", 'first_seen', " + utc("c.first_seen") + ", 'last_seen', " +
         utc("c.last_seen") +
         ") FROM device_certificates c WHERE c.device_id = d.id))::text"
         " FROM devices d WHERE d.id = $1";
}

// 404 for an unknown device, 403 for one outside the token's scope; true
// when the row (column 0 = in scope) lets the request go on.
bool found_and_in_scope(const ExchangePtr& x, const PgReply& r) {
  if (r.rows() == 0 || r.is_null(0, 0)) {
    x->error(404, "unknown device", "no device '" + x->param(0) + "'");
    return false;
  }
  if (r.get(0, 0) != "t") {
    x->error(403, "forbidden", "the device is not tagged '" + x->who().scope_tag + "'");
    return false;
  }
  return true;
}

void get_one(const ExchangePtr& x) {
  for (const auto& [k, v] : x->query())
    if (k != "params") return x->error(400, "unknown parameter", "'" + k + "' (known: params)");
  if (!db_or_503(x)) return;
  const auto window = std::to_string(x->api().options().online_window.count()) + " milliseconds";
  x->api().db()->query(device_sql(),
                       {x->param(0), x->who().scope_tag, x->q("params").value_or(""), window},
                       [x](PgReply r) {
                         if (!x->alive()) return;
                         if (!r.ok()) return answer_db_error(x, r);
                         if (!found_and_in_scope(x, r)) return;
                         x->reply(200, "application/json", std::string(r.get(0, 1)) + "\n");
                       });
}

// One statement, so one transaction: the device and everything kept about
// it. The notification drops a server's cached copy.
constexpr std::string_view kDeleteSql =
    "WITH target AS (SELECT d.id, ($2 = '' OR d.tags @> ARRAY[$2]::text[]) AS allowed"
    "   FROM devices d WHERE d.id = $1 FOR UPDATE),"
    " gone AS (DELETE FROM devices WHERE id IN (SELECT id FROM target WHERE allowed) RETURNING id),"
    " t AS (DELETE FROM tasks WHERE device_id IN (SELECT id FROM gone)),"
    " f AS (DELETE FROM faults WHERE device_id IN (SELECT id FROM gone)),"
    " tr AS (DELETE FROM transfers WHERE device_id IN (SELECT id FROM gone)),"
    " s AS (DELETE FROM session_log WHERE device_id IN (SELECT id FROM gone)),"
    " fi AS (DELETE FROM files WHERE device_id IN (SELECT id FROM gone)),"
    " c AS (DELETE FROM device_certificates WHERE device_id IN (SELECT id FROM gone))"
    " SELECT allowed, CASE WHEN allowed THEN pg_notify('luacs_task', id) END FROM target";

void delete_one(const ExchangePtr& x) {
  const auto& in_session = x->api().services().in_session;
  if (in_session && in_session(x->param(0)))
    return x->error(409, "in session",
                    "the device is in a CWMP session now; delete it once the session ended");
  if (!db_or_503(x)) return;
  x->api().db()->query(std::string(kDeleteSql), {x->param(0), x->who().scope_tag}, [x](PgReply r) {
    if (!x->alive()) return;
    if (!r.ok()) return answer_db_error(x, r);
    if (!found_and_in_scope(x, r)) return;
    x->reply(204, "application/json", "");
  });
}

// 1 to 128 printable ASCII characters.
bool valid_tag(const std::string& t) {
  return !t.empty() && t.size() <= kMaxTag &&
         std::all_of(t.begin(), t.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// Adds or removes a tag; the notification makes a server drop its cached
// copy, so the device's next session reads the change even while cached.
void set_tag(const ExchangePtr& x, bool add) {
  const std::string& tag = x->param(1);
  if (!valid_tag(tag))
    return x->error(400, "bad tag", "a tag is 1 to 128 printable ASCII characters");
  const auto& scope = x->who().scope_tag;
  if (!scope.empty() && tag == scope)
    return x->error(403, "forbidden", "a token scoped to tag '" + scope + "' cannot change it");
  if (!db_or_503(x)) return;
  const std::string change = add ? "array_append(tags, $3)" : "array_remove(tags, $3)";
  const std::string needed = add ? "NOT (tags @> ARRAY[$3]::text[])" : "tags @> ARRAY[$3]::text[]";
  std::string sql =
      "WITH target AS (SELECT d.id, " + std::string(kInScope) +
      " AS allowed FROM devices d WHERE d.id = $1 FOR UPDATE),"
      " changed AS (UPDATE devices SET tags = " +
      change + " WHERE id IN (SELECT id FROM target WHERE allowed) AND " + needed +
      " RETURNING id)"
      " SELECT allowed, CASE WHEN allowed THEN pg_notify('luacs_task', id) END FROM target";
  x->api().db()->query(std::move(sql), {x->param(0), scope, tag}, [x](PgReply r) {
    if (!x->alive()) return;
    if (!r.ok()) return answer_db_error(x, r);
    if (!found_and_in_scope(x, r)) return;
    x->reply(204, "application/json", "");
  });
}

}  // namespace

void add_device_routes(Router& r) {
  r.add(route("GET", "/devices", Role::kRead, list));
  r.add(route("HEAD", "/devices", Role::kRead, count));
  r.add(route("GET", "/devices/{id}", Role::kRead, get_one));
  r.add(route("DELETE", "/devices/{id}", Role::kAdmin, delete_one));
  r.add(route("PUT", "/devices/{id}/tags/{tag}", Role::kOperate,
              [](const ExchangePtr& x) { set_tag(x, true); }));
  r.add(route("DELETE", "/devices/{id}/tags/{tag}", Role::kOperate,
              [](const ExchangePtr& x) { set_tag(x, false); }));
}

}  // namespace luacs::nbi
