// Bulk jobs: one task queued for every device a filter selects.
//
// POST /jobs answers 202 with the job's id at once; the tasks are then
// queued in batches of kBatch devices by keyset over devices.id, each batch
// one statement (one transaction) that selects the next devices, inserts
// their tasks and advances the job's counters, so a job interrupted by a
// restart or an outage has lost nothing and resumes where it stopped (the
// API resumes every job still `queuing` when it starts and every
// kResumeEvery after). A job cancelled while it queues stops at the next
// batch: the batch's statement checks the job's state itself.
//
// Progress is counted from the tasks (tasks_job index): matched and queued
// when the job was queued, then pending / done / faulted / expired as the
// fleet works through them.
#include <chrono>

#include "core/nbi/api.h"
#include "core/nbi/filter.h"
#include "core/nbi/job_waker.h"
#include "core/nbi/scope.h"
#include "core/nbi/task_body.h"
#include "core/util/log.h"

namespace luacs::nbi {

namespace {

constexpr int kBatch = 5000;
constexpr std::chrono::seconds kResumeEvery{10};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What one job's queuing needs between batches.
struct Queuing {
  int64_t id = 0;
  std::string where;  // over devices, parameters from $5 on
  Params filter_params;
  std::string name, args;
  std::optional<std::string> expires_ms, unique_key;
  std::string last_id;  // keyset position
  std::string scope_tag;
  int64_t matched = 0;  // devices selected so far
};

void next_batch(Api& api, std::shared_ptr<Queuing> q);

// A "job" event for /events after each batch: the devices matched so far.
void publish_progress(Api& api, Queuing& q, const std::string& state) {
  if (!api.events().active()) return;
  std::vector<std::string> tags;
  if (!q.scope_tag.empty()) tags.push_back(q.scope_tag);  // only its scope's tokens see it
  api.events().publish(
      "job", "", std::move(tags),
      nlohmann::json{{"id", q.id}, {"state", state}, {"matched", q.matched}}.dump());
}

void finish(Api& api, const std::shared_ptr<Queuing>& q, const std::string& why) {
  api.jobs_queuing().erase(q->id);
  log::warn("api: job " + std::to_string(q->id) + " paused (resumed within " +
            std::to_string(kResumeEvery.count()) + " s): " + why);
}

void next_batch(Api& api, std::shared_ptr<Queuing> q) {
  Db* db = api.db();
  if (!db) return finish(api, q, "no store");
  // $1 job, $2 last id, $3 name, $4 args, then expires, unique key, then
  // the filter's own.
  Params p = {std::to_string(q->id), q->last_id, q->name, q->args, q->expires_ms, q->unique_key};
  for (const auto& v : q->filter_params) p.push_back(v);
  const std::string sql =
      "WITH live AS (SELECT 1 FROM jobs WHERE id = $1 AND state = 'queuing'),"
      " sel AS (SELECT id FROM devices WHERE id > $2 AND EXISTS (SELECT 1 FROM live) AND (" +
      q->where + ") ORDER BY id LIMIT " + std::to_string(kBatch) +
      "),"
      " ins AS (INSERT INTO tasks (device_id, name, args, expires, unique_key, job_id)"
      "  SELECT id, $3, $4::jsonb, to_timestamp($5::bigint / 1000.0), $6, $1::bigint FROM sel"
      "  ON CONFLICT (device_id, unique_key) WHERE state = 'pending'"
      "  DO UPDATE SET args = EXCLUDED.args, expires = EXCLUDED.expires, job_id = EXCLUDED.job_id"
      "  RETURNING 1),"
      " n AS (SELECT (SELECT count(*) FROM sel) AS matched, (SELECT count(*) FROM ins) AS queued,"
      "  (SELECT max(id) FROM sel) AS last),"
      " upd AS (UPDATE jobs SET matched = jobs.matched + n.matched, queued = jobs.queued + "
      "n.queued,"
      "  state = CASE WHEN n.matched < " +
      std::to_string(kBatch) +
      " THEN 'queued' ELSE 'queuing' END"
      "  FROM n WHERE jobs.id = $1 AND jobs.state = 'queuing' RETURNING jobs.state)"
      " SELECT n.matched, n.last, (SELECT state FROM upd) FROM n";
  db->query(sql, std::move(p), [&api, q](PgReply r) {
    if (!r.ok()) return finish(api, q, r.error());
    const std::string state = r.is_null(0, 2) ? "" : std::string(r.get(0, 2));
    q->matched += std::stoll(std::string(r.get(0, 0)));
    if (!state.empty()) publish_progress(api, *q, state);
    if (state != "queuing") {
      // Queued to the end ("queued"), or cancelled meanwhile ("").
      api.jobs_queuing().erase(q->id);
      if (state == "queued") log::info("api: job " + std::to_string(q->id) + " fully queued");
      return;
    }
    q->last_id = std::string(r.get(0, 1));
    next_batch(api, q);
  });
}

// Starts (or resumes) queuing job `id` from its stored row.
void resume(Api& api, int64_t id, const nlohmann::json& filter, const nlohmann::json& task,
            std::optional<std::string> expires_ms, const std::string& scope_tag,
            std::string last_id) {
  if (!api.jobs_queuing().insert(id).second) return;
  auto q = std::make_shared<Queuing>();
  q->id = id;
  q->last_id = std::move(last_id);
  q->scope_tag = scope_tag;
  auto f = parse_filter(filter);
  if (!f.filter) {
    api.jobs_queuing().erase(id);
    log::error("api: job " + std::to_string(id) + " has a bad stored filter: " + f.error);
    return;
  }
  // The filter's parameters are numbered after the six fixed ones.
  Params params(6);
  q->where = filter_sql(*f.filter, scope_tag, api.options().online_window, params);
  q->filter_params.assign(params.begin() + 6, params.end());
  q->name = task.value("name", "");
  q->args = task.contains("args") ? task["args"].dump() : "{}";
  q->expires_ms = std::move(expires_ms);
  if (task.contains("unique_key") && task["unique_key"].is_string())
    q->unique_key = task["unique_key"].get<std::string>();
  next_batch(api, q);
}

// Every kResumeEvery: jobs left `queuing` (by a restart, an outage, a batch
// that failed) are taken up again.
void resume_stalled(Api& api) {
  Db* db = api.db();
  if (!db) return;
  db->query(
      "SELECT j.id, j.filter, j.task, (extract(epoch FROM j.expires) * 1000)::bigint,"
      " j.scope_tag, coalesce((SELECT max(device_id) FROM tasks t WHERE t.job_id = j.id), '')"
      " FROM jobs j WHERE j.state = 'queuing'",
      {}, [&api](PgReply r) {
        if (!r.ok()) return;
        for (int i = 0; i < r.rows(); ++i) {
          const int64_t id = std::stoll(std::string(r.get(i, 0)));
          if (api.jobs_queuing().count(id)) continue;
          std::optional<std::string> expires;
          if (!r.is_null(i, 3)) expires = std::string(r.get(i, 3));
          resume(api, id, nlohmann::json::parse(r.get(i, 1)), nlohmann::json::parse(r.get(i, 2)),
                 expires, std::string(r.get(i, 4)), std::string(r.get(i, 5)));
        }
      });
}

// Every kResumeEvery, too: jobs still waking that no waker runs for (a
// restart, an outage) wake on from their last device.
void resume_waking(Api& api) {
  Db* db = api.db();
  if (!db || !api.services().wake) return;
  db->query(
      "SELECT id, wake_rate, wake_through, woken, wake_outcomes FROM jobs"
      " WHERE wake_state = 'waking' AND state <> 'cancelled'",
      {}, [&api](PgReply r) {
        if (!r.ok()) return;
        for (int i = 0; i < r.rows(); ++i) {
          const int64_t id = std::stoll(std::string(r.get(i, 0)));
          WakeProgress p;
          p.rate = std::stoi(std::string(r.get(i, 1)));
          p.through = r.get(i, 2);
          p.woken = std::stoll(std::string(r.get(i, 3)));
          const auto outcomes = nlohmann::json::parse(r.get(i, 4));
          for (const auto& [k, v] : outcomes.items())
            if (v.is_number_integer()) p.outcomes[k] = v.get<int64_t>();
          JobWaker::start(api, id, std::move(p));
        }
      });
}

// "connection_request": true and "rate": the job's devices are woken, at
// most `rate` a second (default kDefaultRate). 0: the job wakes nobody;
// -1: a 400 was answered.
constexpr int kDefaultRate = 100;

int wake_rate(const ExchangePtr& x, const nlohmann::json& body) {
  const bool wake = body.contains("connection_request");
  if (wake && !body["connection_request"].is_boolean())
    return x->error(400, "bad connection_request", "'connection_request' is true or false"), -1;
  const bool on = wake && body["connection_request"].get<bool>();
  if (!body.contains("rate")) return on ? kDefaultRate : 0;
  if (!on)
    return x->error(400, "bad rate",
                    "'rate' is the devices woken a second; it needs \"connection_request\": true"),
           -1;
  const auto& r = body["rate"];
  if (!r.is_number_integer() || r.get<int64_t>() < 1 || r.get<int64_t>() > JobWaker::kMaxRate)
    return x->error(
               400, "bad rate",
               "'rate' is the devices woken a second, 1.." + std::to_string(JobWaker::kMaxRate)),
           -1;
  if (!x->api().services().wake)
    return x->error(501, "no connection requests", "this server cannot wake devices"), -1;
  return r.get<int>();
}

// ---- routes

void post_job(const ExchangePtr& x) {
  auto body = x->json_body();
  if (!body) return;
  if (!body->is_object()) return x->error(400, "bad body", "expected a JSON object");
  for (const auto& [k, v] : body->items())
    if (k != "filter" && k != "task" && k != "expires" && k != "connection_request" && k != "rate")
      return x->error(400, "unknown field",
                      "'" + k + "' (known: filter, task, expires, connection_request, rate)");
  if (!body->contains("filter") || !(*body)["filter"].is_object())
    return x->error(400, "missing filter",
                    "'filter' must be an object of GET /devices filters ({} selects every device)");
  if (!body->contains("task") || !(*body)["task"].is_object())
    return x->error(400, "missing task",
                    "'task' must be a task body as for POST /devices/{id}/tasks");
  const auto f = parse_filter((*body)["filter"]);
  if (!f.filter) return x->error(400, "bad filter", f.error);
  BodyError err;
  const int64_t now = now_ms();
  auto spec = parse_task_body((*body)["task"], now, &err);
  if (!spec) return x->error(400, err.error, err.detail);
  const int rate = wake_rate(x, *body);
  if (rate < 0) return;
  if (body->contains("expires")) {
    std::string detail;
    const auto e = parse_expires((*body)["expires"], now, &detail);
    if (!e) return x->error(400, "bad expires", detail);
    spec->expires_ms = e;
  }
  Db* db = x->api().db();
  if (!db)
    return x->error(503, "no store", "jobs live in PostgreSQL; no [store] dsn is configured");

  auto create = [x, filter = (*body)["filter"], rate](TaskSpec spec) {
    nlohmann::json task = {{"name", spec.name}, {"args", spec.args}};
    if (spec.unique_key) task["unique_key"] = *spec.unique_key;
    std::optional<std::string> expires;
    if (spec.expires_ms) expires = std::to_string(*spec.expires_ms);
    const std::string scope = x->who().scope_tag;
    x->api().db()->query(
        "INSERT INTO jobs (filter, task, expires, scope_tag, creator, wake_rate, wake_state)"
        " VALUES ($1::jsonb, $2::jsonb, to_timestamp($3::bigint / 1000.0), $4, $5,"
        "  nullif($6::int, 0), CASE WHEN $6::int > 0 THEN 'waking' END) RETURNING id",
        {filter.dump(), task.dump(), expires, scope, x->who().name, std::to_string(rate)},
        [x, filter, task, expires, scope, rate](PgReply r) {
          if (!r.ok()) {
            const auto e = db_error(r);
            if (x->alive()) x->error(e.status, e.error, e.detail);
            return;
          }
          const int64_t id = std::stoll(std::string(r.get(0, 0)));
          log::info("api: job " + std::to_string(id) + " (" + task.value("name", "") + ") by " +
                    x->who().name);
          resume(x->api(), id, filter, task, expires, scope, "");
          nlohmann::json wake;  // null: the job wakes nobody
          if (rate) {
            JobWaker::start(x->api(), id, WakeProgress{rate, "", 0, {}});
            wake = {{"rate", rate},
                    {"state", "waking"},
                    {"woken", 0},
                    {"outcomes", nlohmann::json::object()}};
          }
          if (x->alive())
            x->json(
                202,
                {{"id", id}, {"state", "queuing"}, {"task", task}, {"connection_request", wake}},
                {{"Location", "/jobs/" + std::to_string(id)}});
        });
  };
  if (!spec->policy) return create(std::move(*spec));
  // A policy task: its name must be one the running policy defines.
  const auto& s = x->api().services();
  if (!s.policy_status || !s.main)
    return x->error(400, "unknown task", "no policy is loaded; known: " + known_task_names({}));
  auto back = x->api().executor();
  s.main([status = s.policy_status, back, x, spec = *spec, create]() mutable {
    auto st = status();
    std::vector<std::string> tasks = st.value("tasks", std::vector<std::string>{});
    back([x, spec = std::move(spec), tasks = std::move(tasks), create]() mutable {
      if (!x->alive()) return;
      const auto name = resolve_policy_task(spec, tasks);
      if (!name)
        return x->error(400, "unknown task",
                        "'" + spec.name + "'; known: " + known_task_names(tasks));
      spec.name = *name;
      create(std::move(spec));
    });
  });
}

bool parse_id(const ExchangePtr& x, int64_t* id) {
  const std::string& s = x->param(0);
  try {
    size_t used = 0;
    *id = std::stoll(s, &used);
    if (used == s.size() && *id > 0) return true;
  } catch (const std::exception&) {
  }
  x->error(404, "no such job", "'" + s + "' is not a job id");
  return false;
}

// The job as the API shows it, from a row of kJobColumns.
constexpr const char* kJobColumns =
    "j.id, j.state, j.filter, j.task, j.matched, j.queued, j.creator,"
    " to_char(j.created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    " to_char(j.expires AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    " coalesce((SELECT json_object_agg(state, n) FROM (SELECT state, count(*) AS n FROM tasks"
    "  WHERE job_id = j.id GROUP BY state) c), '{}'),"
    " j.wake_rate, j.wake_state, j.woken, j.wake_outcomes";

nlohmann::json job_json(const PgReply& r, int i) {
  const auto counts = nlohmann::json::parse(r.get(i, 9));
  const int64_t queued = std::stoll(std::string(r.get(i, 5)));
  const int64_t done = counts.value("done", int64_t{0});
  const int64_t faulted = counts.value("fault", int64_t{0});
  const int64_t expired = counts.value("expired", int64_t{0});
  nlohmann::json j = {
      {"id", std::stoll(std::string(r.get(i, 0)))},
      {"state", r.get(i, 1)},
      {"filter", nlohmann::json::parse(r.get(i, 2))},
      {"task", nlohmann::json::parse(r.get(i, 3))},
      {"matched", std::stoll(std::string(r.get(i, 4)))},
      {"queued", queued},
      {"pending", counts.value("pending", int64_t{0})},
      {"done", done},
      {"faulted", faulted},
      {"expired", expired},
      {"creator", r.get(i, 6)},
      {"created", r.get(i, 7)},
      {"expires", r.is_null(i, 8) ? nlohmann::json() : nlohmann::json(r.get(i, 8))}};
  j["connection_request"] = nullptr;
  if (!r.is_null(i, 10)) {
    // A waker running here is ahead of its row (written once a page).
    nlohmann::json w = {{"rate", std::stoi(std::string(r.get(i, 10)))},
                        {"state", r.get(i, 11)},
                        {"woken", std::stoll(std::string(r.get(i, 12)))},
                        {"outcomes", nlohmann::json::parse(r.get(i, 13))}};
    j["connection_request"] = std::move(w);
  }
  // The share of queued tasks that have ended, for a progress bar.
  j["progress"] = queued ? static_cast<double>(done + faulted + expired) / queued : 0.0;
  return j;
}

// A scoped token sees the jobs made under its own scope only.
std::string job_visible(const ExchangePtr& x, Params& p) {
  if (x->who().scope_tag.empty()) return "true";
  p.push_back(x->who().scope_tag);
  return "j.scope_tag = $" + std::to_string(p.size());
}

void get_job(const ExchangePtr& x) {
  int64_t id;
  if (!parse_id(x, &id)) return;
  Params p = {std::to_string(id)};
  const std::string vis = job_visible(x, p);
  x->api().db()->query(
      std::string("SELECT ") + kJobColumns + " FROM jobs j WHERE j.id = $1 AND " + vis,
      std::move(p), [x](PgReply r) {
        if (!x->alive()) return;
        if (!r.ok()) {
          const auto e = db_error(r);
          return x->error(e.status, e.error, e.detail);
        }
        if (r.rows() == 0) return x->error(404, "no such job", x->param(0));
        x->json(200, job_json(r, 0));
      });
}

void list_jobs(const ExchangePtr& x) {
  if (!only_params(x, {"state", "limit", "after"})) return;
  const auto limit = page_limit(x);
  if (!limit) return;
  Params p;
  std::string where = job_visible(x, p);
  if (auto st = x->q("state")) {
    if (*st != "queuing" && *st != "queued" && *st != "cancelled")
      return x->error(400, "bad state", "state is queuing, queued or cancelled");
    p.push_back(*st);
    where += " AND j.state = $" + std::to_string(p.size());
  }
  if (auto after = x->q("after")) {
    int64_t a = 0;
    try {
      a = std::stoll(*after);
    } catch (const std::exception&) {
      return x->error(400, "bad after", "after is the last job id of the previous page");
    }
    p.push_back(std::to_string(a));
    where += " AND j.id < $" + std::to_string(p.size());
  }
  x->api().db()->query(std::string("SELECT ") + kJobColumns + " FROM jobs j WHERE " + where +
                           " ORDER BY j.id DESC LIMIT " + std::to_string(*limit),
                       std::move(p), [x, limit = *limit](PgReply r) {
                         if (!x->alive()) return;
                         if (!r.ok()) {
                           const auto e = db_error(r);
                           return x->error(e.status, e.error, e.detail);
                         }
                         nlohmann::json jobs = nlohmann::json::array();
                         for (int i = 0; i < r.rows(); ++i) jobs.push_back(job_json(r, i));
                         nlohmann::json next;
                         if (r.rows() == limit) next = jobs.back()["id"];
                         x->json(200, {{"jobs", jobs}, {"next", next}});
                       });
}

// Cancels the job: it stops queuing, and its tasks still pending are
// withdrawn (each device's cached copy dropped). Tasks already run stay.
void delete_job(const ExchangePtr& x) {
  int64_t id;
  if (!parse_id(x, &id)) return;
  Params p = {std::to_string(id)};
  const std::string vis = job_visible(x, p);
  x->api().db()->query(
      "WITH j AS (UPDATE jobs j SET state = 'cancelled', wake_state = CASE"
      " WHEN wake_state = 'waking' THEN 'cancelled' ELSE wake_state END"
      " WHERE j.id = $1 AND " +
          vis +
          " RETURNING j.id),"
          " d AS (DELETE FROM tasks WHERE job_id = $1 AND state = 'pending'"
          "  AND EXISTS (SELECT 1 FROM j) RETURNING device_id),"
          " n AS (SELECT pg_notify('luacs_task', device_id) FROM d)"
          " SELECT (SELECT count(*) FROM j), (SELECT count(*) FROM n)",
      std::move(p), [x](PgReply r) {
        if (!x->alive()) return;
        if (!r.ok()) {
          const auto e = db_error(r);
          return x->error(e.status, e.error, e.detail);
        }
        if (r.get(0, 0) == "0") return x->error(404, "no such job", x->param(0));
        JobWaker::cancel(x->api(), std::stoll(x->param(0)));
        x->json(200, {{"id", std::stoll(x->param(0))},
                      {"state", "cancelled"},
                      {"withdrawn", std::stoll(std::string(r.get(0, 1)))}});
      });
}

}  // namespace

void start_job_resumer(Api& api) {
  struct Timer {
    static void fire(evutil_socket_t, short, void* arg) {
      resume_stalled(*static_cast<Api*>(arg));
      resume_waking(*static_cast<Api*>(arg));
    }
  };
  loop::Event ev(event_new(api.base(), -1, EV_PERSIST, &Timer::fire, &api));
  const timeval tv = loop::to_timeval(kResumeEvery);
  event_add(ev.get(), &tv);
  api.keep_event(std::move(ev));
}

void add_job_routes(Router& r) {
  r.add(route("POST", "/jobs", Role::kOperate, post_job));
  r.add(route("GET", "/jobs", Role::kRead, list_jobs));
  r.add(route("GET", "/jobs/{id}", Role::kRead, get_job));
  r.add(route("DELETE", "/jobs/{id}", Role::kOperate, delete_job));
}

}  // namespace luacs::nbi
