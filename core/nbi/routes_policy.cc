// GET /policy, POST /policy/reload, POST /policy/check: what `luacs status`,
// `luacs reload` and `luacs check` do, run on the main thread (a reload
// reads the policy's files; the API's loop never does file I/O of that
// size) and answered back on the API's loop.
#include "core/nbi/api.h"

namespace luacs::nbi {

namespace {

// Runs fn on the main thread and answers with its JSON (status from
// `status_of`), or 501 when the server lends no such function.
void on_main(const ExchangePtr& x, std::function<nlohmann::json()> fn,
             std::function<int(const nlohmann::json&)> status_of) {
  const auto& s = x->api().services();
  if (!fn || !s.main) return x->error(501, "not available", "this server has no policy engine");
  auto back = x->api().executor();
  s.main([fn = std::move(fn), back, x, status_of = std::move(status_of)] {
    auto j = std::make_shared<nlohmann::json>(fn());
    back([x, j, status_of] {
      if (x->alive()) x->json(status_of(*j), *j);
    });
  });
}

int always_ok(const nlohmann::json&) {
  return 200;
}
// A reload or check that failed is still a well-formed answer: 422 says the
// policy (not the request) is broken, the old generation keeps serving.
int ok_or_422(const nlohmann::json& j) {
  return j.value("ok", false) ? 200 : 422;
}

void get_policy(const ExchangePtr& x) {
  on_main(x, x->api().services().policy_status, always_ok);
}

void reload(const ExchangePtr& x) {
  if (x->api().options().policy_dir.empty())
    return x->error(409, "no policy", "no [policy] dir is configured; nothing to reload");
  on_main(x, x->api().services().policy_reload, ok_or_422);
}

// Checks the configured folder, or {"dir": "..."} another one on the
// server's disk (a staging copy before it replaces the live one).
void check(const ExchangePtr& x) {
  auto body = x->json_body();
  if (!body) return;
  std::string dir = x->api().options().policy_dir;
  if (!body->is_object()) return x->error(400, "bad body", "expected a JSON object");
  for (const auto& [k, v] : body->items()) {
    if (k != "dir") return x->error(400, "unknown field", "'" + k + "' (known: dir)");
    if (!v.is_string() || v.get<std::string>().empty())
      return x->error(400, "bad field", "'dir' must be a non-empty string");
    dir = v.get<std::string>();
  }
  if (dir.empty()) return x->error(409, "no policy", "no [policy] dir configured; send {\"dir\"}");
  const auto& fn = x->api().services().policy_check;
  if (!fn) return x->error(501, "not available", "this server has no policy engine");
  on_main(
      x, [fn, dir] { return fn(dir); }, ok_or_422);
}

}  // namespace

void add_policy_routes(Router& r) {
  auto get = route("GET", "/policy", Role::kRead, get_policy);
  auto rl = route("POST", "/policy/reload", Role::kAdmin, reload);
  auto ck = route("POST", "/policy/check", Role::kAdmin, check);
  rl.fleet_wide = ck.fleet_wide = true;
  r.add(std::move(get));
  r.add(std::move(rl));
  r.add(std::move(ck));
}

}  // namespace luacs::nbi
