#include "core/nbi/db.h"

#include "core/util/log.h"

namespace luacs::nbi {

Db::Db(event_base* base, const std::string& dsn, unsigned connections) {
  for (unsigned i = 0; i < std::max(connections, 1u); ++i) {
    store::PgConnection::Options o;
    o.dsn = dsn;
    o.application_name = "luacs-api";
    conns_.push_back(std::make_unique<store::PgConnection>(base, o));
  }
}

Db::~Db() {
  close();
}

void Db::start() {
  for (auto& c : conns_) c->start();
}

void Db::close() {
  for (auto& c : conns_) c->close();
}

bool Db::available() const {
  for (const auto& c : conns_)
    if (c->available()) return true;
  return false;
}

void Db::query(std::string sql, Params params, store::PgConnection::Callback done) {
  store::PgConnection* best = nullptr;
  for (auto& c : conns_) {
    if (!c->available()) continue;
    if (!best || c->queued() < best->queued()) best = c.get();
  }
  if (!best) best = conns_.front().get();  // fails at once, from the loop
  best->query(std::move(sql), std::move(params), std::move(done));
}

DbError db_error(const PgReply& r) {
  if (r.connection_lost())
    return {503, "store unavailable", "PostgreSQL is not reachable; try again"};
  log::error("api: query failed: " + r.error());
  return {500, "internal error", "the query failed; see the server log"};
}

}  // namespace luacs::nbi
