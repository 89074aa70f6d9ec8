// /healthz, /readyz, /openapi.json: open to anyone (no token).
#include "core/nbi/api.h"
#include "core/nbi/openapi.h"

namespace luacs::nbi {

namespace {

void healthz(const ExchangePtr& x) {
  x->json(200, {{"status", "alive"}});
}

void readyz(const ExchangePtr& x) {
  const auto& s = x->api().services();
  Db* db = x->api().db();
  const bool store = db && db->available() && (!s.store_available || s.store_available());
  // A policy is loaded whenever the server runs: start-up stops on a broken
  // one and a failed reload keeps the old one. What can be missing is the
  // store.
  nlohmann::json j = {{"store", db ? (store ? "up" : "down") : "none"},
                      {"policy", x->api().options().policy_dir.empty() ? "none" : "loaded"}};
  j["status"] = (store || !db) ? "ready" : "not ready";
  x->json((store || !db) ? 200 : 503, j);
}

void openapi(const ExchangePtr& x) {
  x->reply(200, "application/json", std::string(openapi_json()));
}

}  // namespace

void add_basic_routes(Router& r) {
  r.add(route("GET", "/healthz", Role::kNone, healthz));
  r.add(route("GET", "/readyz", Role::kNone, readyz));
  r.add(route("GET", "/openapi.json", Role::kNone, openapi));
}

}  // namespace luacs::nbi
