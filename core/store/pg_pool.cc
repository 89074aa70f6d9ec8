#include "core/store/pg_pool.h"

#include <algorithm>

namespace luacs::store {

PgPool::PgPool(event_base* base, const std::string& dsn, unsigned connections,
               std::string application_name)
    : first_base_(base), opts_dsn_(dsn), name_(std::move(application_name)) {
  for (unsigned i = 0; i < std::max(connections, 1u); ++i) {
    PgConnection::Options o;
    o.dsn = dsn;
    o.application_name = name_;
    conns_.push_back(std::make_unique<PgConnection>(base, o));
  }
}

void PgPool::listen(const std::string& channel, std::function<void(const std::string&)> notified,
                    std::function<void()> reconnected) {
  auto& first = conns_.front();
  PgConnection::Options o;
  o.dsn = opts_dsn_;
  o.application_name = name_;
  o.on_connect_sql = "LISTEN " + channel;
  first = std::make_unique<PgConnection>(first_base_, o);
  first->on_notify = [channel, notified = std::move(notified)](const std::string& ch,
                                                               const std::string& payload, int) {
    if (ch == channel) notified(payload);
  };
  first->on_state = [reconnected = std::move(reconnected)](bool up) {
    if (up) reconnected();
  };
}

PgPool::~PgPool() {
  close();
}

void PgPool::start() {
  for (auto& c : conns_) c->start();
}

void PgPool::close() {
  for (auto& c : conns_) c->close();
}

bool PgPool::available() const {
  for (const auto& c : conns_)
    if (c->available()) return true;
  return false;
}

void PgPool::query(std::string sql, PgConnection::Params params, PgConnection::Callback done) {
  PgConnection* best = nullptr;
  for (auto& c : conns_) {
    if (!c->available()) continue;
    if (!best || c->queued() < best->queued()) best = c.get();
  }
  if (!best) best = conns_.front().get();  // fails at once, from the loop
  best->query(std::move(sql), std::move(params), std::move(done));
}

}  // namespace luacs::store
