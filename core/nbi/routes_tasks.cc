// POST /devices/{id}/tasks, GET /tasks, GET|DELETE /tasks/{id},
// POST /tasks/{id}/retry: the device's task queue (docs/nbi.md).
//
// A task is a row of `tasks`; the device's next session runs it. Each
// change is one statement, so the device check, the tag scope and the
// change cannot be separated by another writer, and each tells every
// luacs node to drop its cached copy of the device (NOTIFY luacs_task: the
// insert trigger does it for new rows, the statements here for the rest).
#include <charconv>
#include <chrono>

#include "core/nbi/api.h"
#include "core/nbi/scope.h"
#include "core/nbi/task_body.h"
#include "core/nbi/wake.h"
#include "core/util/json.h"

namespace luacs::nbi {

namespace {

using nlohmann::json;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// One task row as JSON text; `t` is the row's alias.
std::string task_json_sql(const std::string& t) {
  return "json_build_object('id', " + t + ".id, 'device', " + t + ".device_id, 'name', " + t +
         ".name, 'args', " + t + ".args, 'state', " + t + ".state, 'created', " +
         utc_sql(t + ".created") + ", 'expires', " + utc_sql(t + ".expires") + ", 'finished', " +
         utc_sql(t + ".finished") + ", 'result', " + t + ".result, 'unique_key', " + t +
         ".unique_key, 'job', " + t + ".job_id)::text";
}

std::optional<int64_t> positive_id(std::string_view s) {
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n < 1) return std::nullopt;
  return n;
}

// The task of the path, or a 404 answered.
std::optional<int64_t> task_id(const ExchangePtr& x) {
  auto id = positive_id(x->param(0));
  if (!id) x->error(404, "no such task", "task ids are positive integers");
  return id;
}

std::string denied(const ExchangePtr& x) {
  return "token '" + x->who().name + "' is scoped to tag '" + x->who().scope_tag +
         "'; the task's device does not carry it";
}

// ---- POST /devices/{id}/tasks

// ?connection_request: the task was queued; wake the device and wait, until
// `deadline`, for its session to settle the task.
struct TaskWait {
  ExchangePtr x;
  int64_t task = 0;
  json queued;  // the 202 answer
  std::chrono::steady_clock::time_point deadline;
};

void poll_task(std::shared_ptr<TaskWait> w);

// Polls again in 100 ms (a timer on the API's loop; freed with the loop).
void poll_later(std::shared_ptr<TaskWait> w) {
  const timeval tv = loop::to_timeval(std::chrono::milliseconds{100});
  auto* held = new std::shared_ptr<TaskWait>(std::move(w));
  event_base_once(
      (*held)->x->api().base(), -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* arg) {
        std::unique_ptr<std::shared_ptr<TaskWait>> p(static_cast<std::shared_ptr<TaskWait>*>(arg));
        if ((*p)->x->alive()) poll_task(std::move(*p));
      },
      held, &tv);
}

void poll_task(std::shared_ptr<TaskWait> w) {
  store_query(w->x, "SELECT t.state, " + task_json_sql("t") + " FROM tasks t WHERE t.id = $1::int8",
              {std::to_string(w->task)}, [w](const PgReply& r) {
                if (r.rows() == 1 && r.get(0, 0) != "pending")
                  return w->x->reply(200, "application/json", std::string(r.get(0, 1)) + "\n");
                if (r.rows() == 0 || std::chrono::steady_clock::now() >= w->deadline)
                  return w->x->json(202, w->queued);
                poll_later(w);
              });
}

void wake_for_task(const ExchangePtr& x, json queued, std::chrono::milliseconds timeout) {
  auto w = std::make_shared<TaskWait>();
  w->x = x;
  w->task = queued["id"].get<int64_t>();
  w->deadline = std::chrono::steady_clock::now() + timeout;
  w->queued = std::move(queued);
  wake_device(x, x->param(0), timeout, [w](const WakeAnswer& a) {
    w->queued["connection_request"] = wake_json(a);
    if (!a.session_started) return w->x->json(202, w->queued);
    poll_task(w);
  });
}

void insert(const ExchangePtr& x, const TaskSpec& t,
            std::optional<std::chrono::milliseconds> wake = std::nullopt) {
  Params p = {x->param(0), t.name, util::json_text(t.args),
              t.expires_ms ? std::optional(std::to_string(*t.expires_ms)) : std::nullopt,
              t.unique_key};
  const std::string visible = visible_sql(x->who(), "dv.id", p);
  // A pending task with the same unique_key is replaced in place: it keeps
  // its id and its place in the queue. An update fires no insert trigger,
  // hence the explicit NOTIFY.
  std::string sql =
      "WITH d AS (SELECT dv.id, " + visible +
      " AS ok FROM devices dv WHERE dv.id = $1),"
      " i AS (INSERT INTO tasks AS t (device_id, name, args, expires, unique_key)"
      "  SELECT $1, $2::text, $3::jsonb, to_timestamp($4::float8 / 1000), $5::text FROM d"
      "  WHERE d.ok"
      "  ON CONFLICT (device_id, unique_key) WHERE state = 'pending'"
      "  DO UPDATE SET name = EXCLUDED.name, args = EXCLUDED.args, expires = EXCLUDED.expires"
      "  RETURNING t.xmax::text <> '0' AS replaced, " +
      task_json_sql("t") +
      " AS j)"
      " SELECT d.ok, i.replaced, i.j,"
      "  (SELECT count(*) FROM (SELECT pg_notify('luacs_task', $1) FROM i) n)"
      " FROM d LEFT JOIN i ON true";
  store_query(x, std::move(sql), std::move(p), [x, genieacs = t.genieacs, wake](const PgReply& r) {
    if (r.rows() == 0)
      return x->error(404, "no such device",
                      "'" + x->param(0) + "' has not informed (or was deleted)");
    if (r.get(0, 0) != "t")
      return x->error(403, "forbidden",
                      "token '" + x->who().name + "' is scoped to tag '" + x->who().scope_tag +
                          "'; the device does not carry it");
    json j = json::parse(r.get(0, 2));
    j["replaced"] = r.get(0, 1) == "t";
    if (genieacs) j["_id"] = std::to_string(j["id"].get<int64_t>());
    if (wake) return wake_for_task(x, std::move(j), *wake);
    x->json(202, j);
  });
}

// The running policy's task names, from the main thread (where the policy
// manager lives), handed to `then` on the API's loop; none without a policy.
void with_policy_tasks(const ExchangePtr& x, std::function<void(std::vector<std::string>)> then) {
  const auto& s = x->api().services();
  if (!s.policy_status || !s.main) return then({});
  auto back = x->api().executor();
  s.main([status = s.policy_status, back, x, then = std::move(then)] {
    std::vector<std::string> names;
    const json j = status();
    if (auto it = j.find("tasks"); it != j.end() && it->is_array())
      for (const auto& n : *it)
        if (n.is_string()) names.push_back(n.get<std::string>());
    back([x, names = std::move(names), then] {
      if (x->alive()) then(names);
    });
  });
}

void create(const ExchangePtr& x) {
  if (!only_params(x, {"connection_request", "timeout"})) return;
  std::optional<std::chrono::milliseconds> wake;
  if (x->has_q("connection_request")) {
    if (!x->api().services().wake)
      return x->error(501, "not available",
                      "this server sends no connection requests; nothing was queued");
    wake = wake_timeout(x);
    if (!wake) return;
  }
  auto body = x->json_body();
  if (!body) return;
  BodyError err;
  auto spec = parse_task_body(*body, now_ms(), &err);
  if (!spec) return x->error(400, err.error, err.detail);
  if (!spec->policy) return insert(x, *spec, wake);
  with_policy_tasks(x, [x, spec = std::move(*spec),
                        wake](const std::vector<std::string>& names) mutable {
    auto stored = resolve_policy_task(spec, names);
    if (!stored)
      return x->error(400, "unknown task",
                      "'" + spec.name + "' is neither an RPC nor a task of the running policy; " +
                          known_task_names(names));
    spec.name = *stored;
    insert(x, spec, wake);
  });
}

// ---- GET /tasks

void list(const ExchangePtr& x) {
  if (!only_params(x, {"device", "state", "limit", "after"})) return;
  const auto limit = page_limit(x);
  if (!limit) return;
  Params p;
  std::string where;
  if (auto after = x->q("after")) {
    auto id = positive_id(*after);
    if (!id && *after != "0")
      return x->error(400, "bad parameter", "'after' must be a task id (an integer)");
    p.emplace_back(std::to_string(id.value_or(0)));
    where += " AND t.id > $" + std::to_string(p.size()) + "::int8";
  }
  if (auto device = x->q("device")) {
    p.emplace_back(*device);
    where += " AND t.device_id = $" + std::to_string(p.size());
  }
  if (auto state = x->q("state")) {
    if (*state != "pending" && *state != "done" && *state != "fault" && *state != "expired")
      return x->error(400, "bad parameter", "'state' is one of pending, done, fault, expired");
    p.emplace_back(*state);
    where += " AND t.state = $" + std::to_string(p.size());
  }
  const std::string visible = visible_sql(x->who(), "t.device_id", p);
  std::string sql = "SELECT t.id, " + task_json_sql("t") + " FROM tasks t WHERE " + visible +
                    where + " ORDER BY t.id LIMIT " + std::to_string(*limit);
  store_query(x, std::move(sql), std::move(p), [x, limit = *limit](const PgReply& r) {
    std::string out = "{\"tasks\": [";
    for (int i = 0; i < r.rows(); ++i) {
      if (i) out += ", ";
      out += r.get(i, 1);
    }
    out += "], \"next\": ";
    out += r.rows() == limit ? std::string(r.get(r.rows() - 1, 0)) : "null";
    out += "}\n";
    x->reply(200, "application/json", std::move(out));
  });
}

// ---- GET /tasks/{id}

void get(const ExchangePtr& x) {
  const auto id = task_id(x);
  if (!id) return;
  Params p = {std::to_string(*id)};
  const std::string visible = visible_sql(x->who(), "t.device_id", p);
  store_query(x, "SELECT " + visible + ", " + task_json_sql("t") + " FROM tasks t WHERE t.id = $1",
              std::move(p), [x](const PgReply& r) {
                if (r.rows() == 0) return x->error(404, "no such task", "no task " + x->param(0));
                if (r.get(0, 0) != "t") return x->error(403, "forbidden", denied(x));
                x->reply(200, "application/json", std::string(r.get(0, 1)) + "\n");
              });
}

// ---- DELETE /tasks/{id}

void remove(const ExchangePtr& x) {
  const auto id = task_id(x);
  if (!id) return;
  Params p = {std::to_string(*id)};
  const std::string visible = visible_sql(x->who(), "t.device_id", p);
  // The state is checked again on the row the DELETE locks: a session that
  // settled the task meanwhile wins, and the answer is 409.
  std::string sql =
      "WITH t AS (SELECT t.id, t.state, " + visible +
      " AS ok FROM tasks t WHERE t.id = $1),"
      " del AS (DELETE FROM tasks x USING t WHERE x.id = t.id AND t.ok"
      "  AND x.state = 'pending' RETURNING x.device_id, " +
      task_json_sql("x") +
      " AS j)"
      " SELECT t.ok, t.state, (SELECT j FROM del),"
      "  (SELECT count(*) FROM (SELECT pg_notify('luacs_task', device_id) FROM del) n)"
      " FROM t";
  store_query(x, std::move(sql), std::move(p), [x](const PgReply& r) {
    if (r.rows() == 0) return x->error(404, "no such task", "no task " + x->param(0));
    if (r.get(0, 0) != "t") return x->error(403, "forbidden", denied(x));
    if (r.is_null(0, 2))
      return x->error(
          409, "not pending",
          "task " + x->param(0) + " is " +
              std::string(r.get(0, 1) == "pending" ? "no longer pending" : r.get(0, 1)) +
              "; only a pending task can be deleted");
    json j = json::parse(r.get(0, 2));
    j["deleted"] = true;
    x->json(200, j);
  });
}

// ---- POST /tasks/{id}/retry

void retry(const ExchangePtr& x) {
  const auto id = task_id(x);
  if (!id) return;
  auto body = x->json_body();
  if (!body) return;
  if (!body->is_object()) return x->error(400, "bad body", "expected a JSON object");
  std::optional<int64_t> expires;
  for (const auto& [k, v] : body->items()) {
    if (k != "expires") return x->error(400, "unknown field", "'" + k + "' (known: expires)");
    std::string why;
    expires = parse_expires(v, now_ms(), &why);
    if (!expires) return x->error(400, "bad field", why);
  }
  Params p = {std::to_string(*id),
              expires ? std::optional(std::to_string(*expires)) : std::nullopt};
  const std::string visible = visible_sql(x->who(), "t.device_id", p);
  // A new row (the insert trigger notifies): the failed one stays as the
  // record of what happened. Not part of the old one's job.
  std::string sql =
      "WITH t AS (SELECT t.*, " + visible +
      " AS ok FROM tasks t WHERE t.id = $1),"
      " i AS (INSERT INTO tasks AS n (device_id, name, args, unique_key, expires)"
      "  SELECT device_id, name, args, unique_key, to_timestamp($2::float8 / 1000) FROM t"
      "  WHERE t.ok AND t.state IN ('fault', 'expired')"
      "  ON CONFLICT (device_id, unique_key) WHERE state = 'pending' DO NOTHING"
      "  RETURNING " +
      task_json_sql("n") +
      " AS j)"
      " SELECT t.ok, t.state, t.unique_key, (SELECT j FROM i) FROM t";
  store_query(x, std::move(sql), std::move(p), [x](const PgReply& r) {
    if (r.rows() == 0) return x->error(404, "no such task", "no task " + x->param(0));
    if (r.get(0, 0) != "t") return x->error(403, "forbidden", denied(x));
    const std::string state(r.get(0, 1));
    if (state != "fault" && state != "expired")
      return x->error(
          409, "not retryable",
          "task " + x->param(0) + " is " + state + "; only a fault or expired task can be retried");
    if (r.is_null(0, 3))
      return x->error(409, "already queued",
                      "a pending task with unique_key '" + std::string(r.get(0, 2)) +
                          "' is queued for this device already");
    json j = json::parse(r.get(0, 3));
    j["retry_of"] = *positive_id(x->param(0));
    x->json(202, j);
  });
}

}  // namespace

void add_task_routes(Router& r) {
  r.add(route("POST", "/devices/{id}/tasks", Role::kOperate, create));
  r.add(route("GET", "/tasks", Role::kRead, list));
  r.add(route("GET", "/tasks/{id}", Role::kRead, get));
  r.add(route("DELETE", "/tasks/{id}", Role::kOperate, remove));
  r.add(route("POST", "/tasks/{id}/retry", Role::kOperate, retry));
}

}  // namespace luacs::nbi
