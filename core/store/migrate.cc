#include "core/store/migrate.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "core/util/log.h"

namespace luacs::store {

namespace {

// pg_advisory_lock key: "luacs" in ASCII, shared by every node.
constexpr const char* kLockSql = "SELECT pg_advisory_lock(465624855411)";
constexpr const char* kUnlockSql = "SELECT pg_advisory_unlock(465624855411)";

struct MigrationFile {
  int version = 0;
  std::string name;  // "initial"
  std::string file;  // "001_initial.sql"
  std::filesystem::path path;
};

PgResultPtr exec(PGconn* conn, const char* sql, const std::string& what) {
  PgResultPtr r(PQexec(conn, sql));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    throw std::runtime_error(what + ": " + first_line(PQerrorMessage(conn)));
  }
  return r;
}

std::vector<MigrationFile> list_migrations(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot read: " + ec.message());
  std::vector<MigrationFile> out;
  for (const auto& entry : it) {
    const std::string file = entry.path().filename().string();
    if (entry.path().extension() != ".sql") continue;
    // NNN_name.sql: digits, an underscore, a non-empty name.
    const size_t digits = file.find_first_not_of("0123456789");
    const std::string stem = file.substr(0, file.size() - 4);
    if (digits == 0 || digits == std::string::npos || digits > 9 || file[digits] != '_' ||
        stem.size() <= digits + 1) {
      throw std::runtime_error(dir + "/" + file + ": not a migration name (NNN_name.sql)");
    }
    MigrationFile f;
    f.version = std::stoi(file.substr(0, digits));
    f.name = stem.substr(digits + 1);
    f.file = file;
    f.path = entry.path();
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].version == out[i - 1].version) {
      throw std::runtime_error(dir + ": two migrations with version " +
                               std::to_string(out[i].version) + ": " + out[i - 1].file + ", " +
                               out[i].file);
    }
  }
  return out;
}

// The line of a 1-based character position (PG_DIAG_STATEMENT_POSITION
// counts characters, not bytes).
int line_of(const std::string& text, long position) {
  int line = 1;
  long chars = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++chars;  // a UTF-8 lead byte
    if (chars >= position) break;
    if (c == '\n') ++line;
  }
  return line;
}

// Releases the advisory lock however migrate() ends (the session ending
// would too; this keeps the connection reusable).
struct Unlock {
  PGconn* conn;
  ~Unlock() { PgResultPtr(PQexec(conn, kUnlockSql)); }
};

}  // namespace

PgConnPtr connect_blocking(const std::string& dsn, std::chrono::milliseconds timeout) {
  const long secs = std::max<long>(2, static_cast<long>((timeout.count() + 999) / 1000));
  const std::string timeout_s = std::to_string(secs);
  // Earlier keywords are defaults: the dsn (expanded from dbname) wins.
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {timeout_s.c_str(), "luacs", dsn.c_str(), nullptr};
  PgConnPtr conn(PQconnectdbParams(keywords, values, 1));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    const std::string why = conn ? first_line(PQerrorMessage(conn.get())) : "out of memory";
    throw std::runtime_error("cannot connect to PostgreSQL at " + describe_dsn(dsn) + ": " + why +
                             "; is it running? check [store] dsn");
  }
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

MigrationReport migrate(PGconn* conn, const std::string& sql_dir) {
  const std::vector<MigrationFile> files = list_migrations(sql_dir);

  exec(conn, kLockSql, "cannot take the migration lock");
  Unlock unlock{conn};
  exec(conn,
       "CREATE TABLE IF NOT EXISTS schema_migrations ("
       " version integer PRIMARY KEY,"
       " name text NOT NULL,"
       " applied_at timestamptz NOT NULL DEFAULT now())",
       "cannot create schema_migrations");
  PgResultPtr r = exec(conn, "SELECT version FROM schema_migrations ORDER BY version",
                       "cannot read schema_migrations");
  std::set<int> applied;
  for (int i = 0; i < PQntuples(r.get()); ++i) applied.insert(std::atoi(PQgetvalue(r.get(), i, 0)));

  MigrationReport report;
  report.from = applied.empty() ? 0 : *applied.rbegin();
  const int known = files.empty() ? 0 : files.back().version;
  if (report.from > known) {
    throw std::runtime_error("database schema is at version " + std::to_string(report.from) +
                             " but this luacs knows up to " + std::to_string(known) +
                             "; upgrade luacs");
  }

  for (const MigrationFile& f : files) {
    if (applied.count(f.version)) continue;
    const std::string where = sql_dir + "/" + f.file;
    std::ifstream in(f.path, std::ios::binary);
    if (!in) throw std::runtime_error(where + ": cannot read");
    std::stringstream text;
    text << in.rdbuf();
    const std::string sql = text.str();

    exec(conn, "BEGIN", where);
    PgResultPtr res(PQexec(conn, sql.c_str()));
    const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
      std::string message = first_line(PQerrorMessage(conn));
      std::string at = where;
      if (res) {
        if (const char* primary = PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY))
          message = first_line(primary);
        if (const char* pos = PQresultErrorField(res.get(), PG_DIAG_STATEMENT_POSITION)) {
          at += ':';
          at += std::to_string(line_of(sql, std::atol(pos)));
        }
      }
      PgResultPtr(PQexec(conn, "ROLLBACK"));
      throw std::runtime_error(at + ": " + message + "; nothing from it was applied");
    }
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
      throw std::runtime_error(where +
                               ": ends its own transaction (COMMIT/ROLLBACK); each migration runs "
                               "in one transaction applied by luacs — remove them");
    }
    const std::string version = std::to_string(f.version);
    const char* params[] = {version.c_str(), f.name.c_str()};
    PgResultPtr ins(PQexecParams(conn,
                                 "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                                 nullptr, params, nullptr, nullptr, 0));
    if (!ins || PQresultStatus(ins.get()) != PGRES_COMMAND_OK) {
      const std::string why = first_line(PQerrorMessage(conn));
      PgResultPtr(PQexec(conn, "ROLLBACK"));
      throw std::runtime_error(where + ": cannot record it: " + why);
    }
    exec(conn, "COMMIT", where);
    report.applied.push_back(f.file);
    report.to = f.version;
    log::info("store: applied migration " + where);
  }
  report.to = std::max(report.from, report.to);
  return report;
}

}  // namespace luacs::store
