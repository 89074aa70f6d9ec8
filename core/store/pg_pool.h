// A few asynchronous PostgreSQL connections (PgConnection) on one event
// loop, never a blocking call. A query goes to the ready connection with the
// shortest queue, so one long query does not hold up the short ones behind
// it, and many callers' round trips overlap. The API (nbi::Db) and the
// connection-request service use it.
#pragma once

#include <event2/event.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/store/pg_connection.h"

namespace luacs::store {

class PgPool {
 public:
  // `connections` (at least 1) connections named `application_name`.
  PgPool(event_base* base, const std::string& dsn, unsigned connections,
         std::string application_name);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Before start(): the first connection LISTENs on `channel` and hands
  // each payload to `notified`; `reconnected` runs each time it is up again
  // (NOTIFYs sent while it was down are lost).
  void listen(const std::string& channel, std::function<void(const std::string&)> notified,
              std::function<void()> reconnected);
  void start();
  void close();
  bool available() const;
  // Runs on a ready connection; while none is, fails at once (from the
  // loop) with connection_lost().
  void query(std::string sql, PgConnection::Params params, PgConnection::Callback done);

 private:
  event_base* first_base_;
  std::string opts_dsn_, name_;
  std::vector<std::unique_ptr<PgConnection>> conns_;
};

}  // namespace luacs::store
