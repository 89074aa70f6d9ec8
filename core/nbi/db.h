// The API's PostgreSQL: its pool of connections on the API's loop
// (store::PgPool), and how a failed query is answered.
#pragma once

#include <event2/event.h>

#include <memory>
#include <string>
#include <vector>

#include "core/store/pg_connection.h"
#include "core/store/pg_pool.h"

namespace luacs::nbi {

using store::PgReply;
using Params = store::PgConnection::Params;

// The API's own connections: a pool on the API's loop (store/pg_pool.h).
using Db = store::PgPool;

// PostgreSQL's answer as the API's error: 503 when it is unreachable, 500
// otherwise (the message logged, a generic detail sent).
struct DbError {
  int status;
  std::string error, detail;
};
DbError db_error(const PgReply& r);

}  // namespace luacs::nbi
