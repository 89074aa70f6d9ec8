#include "core/nbi/db.h"

#include "core/util/log.h"

namespace luacs::nbi {

DbError db_error(const PgReply& r) {
  if (r.connection_lost())
    return {503, "store unavailable", "PostgreSQL is not reachable; try again"};
  log::error("api: query failed: " + r.error());
  return {500, "internal error", "the query failed; see the server log"};
}

}  // namespace luacs::nbi
