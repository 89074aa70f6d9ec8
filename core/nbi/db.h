// The API's own PostgreSQL connections: asynchronous (store::PgConnection)
// on the API's loop, never a blocking call. A query goes to the ready
// connection with the shortest queue, so one long CSV page does not hold
// up a token check behind it when there are two or more.
#pragma once

#include <event2/event.h>

#include <memory>
#include <string>
#include <vector>

#include "core/store/pg_connection.h"

namespace luacs::nbi {

using store::PgReply;
using Params = store::PgConnection::Params;

class Db {
 public:
  Db(event_base* base, const std::string& dsn, unsigned connections);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

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
  void query(std::string sql, Params params, store::PgConnection::Callback done);

 private:
  event_base* first_base_;
  std::string opts_dsn_;
  std::vector<std::unique_ptr<store::PgConnection>> conns_;
};

// PostgreSQL's answer as the API's error: 503 when it is unreachable, 500
// otherwise (the message logged, a generic detail sent).
struct DbError {
  int status;
  std::string error, detail;
};
DbError db_error(const PgReply& r);

}  // namespace luacs::nbi
