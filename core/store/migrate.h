// Internal to core/store: the blocking start-up path — connecting for the
// first time and applying the schema migrations.
//
// Migrations are the files `NNN_name.sql` of a folder, applied in numeric
// order, each once and each in its own transaction, recorded in
// schema_migrations(version, name, applied_at). A session advisory lock
// serialises luacs nodes starting together. A database whose highest
// recorded version is above the highest file known is refused (an older
// binary must not run against a newer schema).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/store/pg_connection.h"

namespace luacs::store {

struct MigrationReport {
  int from = 0;                      // highest version recorded before
  int to = 0;                        // ... and after
  std::vector<std::string> applied;  // file names, in order
};

// Blocking connect (PQconnectdbParams). Throws std::runtime_error:
// "cannot connect to PostgreSQL at <host/db/user>: <reason>; is it running?
// check [store] dsn".
PgConnPtr connect_blocking(const std::string& dsn, std::chrono::milliseconds timeout);

// Applies what is missing from `sql_dir`. Throws std::runtime_error with one
// line: "<dir>/<file>:<line>: <server message>; nothing from it was applied",
// "database schema is at version N but this luacs knows up to M; upgrade
// luacs", "<dir>: cannot read: ...".
MigrationReport migrate(PGconn* conn, const std::string& sql_dir);

}  // namespace luacs::store
