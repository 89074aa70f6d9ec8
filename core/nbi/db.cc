#include "core/nbi/db.h"

#include "core/util/log.h"

namespace luacs::nbi {

Db::Db(event_base* base, const std::string& dsn, unsigned connections)
    : first_base_(base), opts_dsn_(dsn) {
  for (unsigned i = 0; i < std::max(connections, 1u); ++i) {
    store::PgConnection::Options o;
    o.dsn = dsn;
    o.application_name = "luacs-api";
    conns_.push_back(std::make_unique<store::PgConnection>(base, o));
  }
}

void Db::listen(const std::string& channel, std::function<void(const std::string&)> notified,
                std::function<void()> reconnected) {
  auto& first = conns_.front();
  store::PgConnection::Options o;
  o.dsn = opts_dsn_;
  o.application_name = "luacs-api";
  o.on_connect_sql = "LISTEN " + channel;
  first = std::make_unique<store::PgConnection>(first_base_, o);
  first->on_notify = [channel, notified = std::move(notified)](const std::string& ch,
                                                               const std::string& payload, int) {
    if (ch == channel) notified(payload);
  };
  first->on_state = [reconnected = std::move(reconnected)](bool up) {
    if (up) reconnected();
  };
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
