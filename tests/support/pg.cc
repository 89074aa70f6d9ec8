#include "support/pg.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <stdexcept>

namespace luacs::test {

std::string test_dsn() {
  if (const char* env = getenv("LUACS_TEST_DSN"); env && *env) return env;
  std::string cmd = std::string(LUACS_SOURCE_DIR) + "/scripts/pg-private dsn 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {};
  std::string out;
  std::array<char, 512> buf{};
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Pg::Pg(const std::string& dsn) {
  conn_ = PQconnectdb(dsn.c_str());
  if (PQstatus(static_cast<PGconn*>(conn_)) != CONNECTION_OK)
    error_ = PQerrorMessage(static_cast<PGconn*>(conn_));
}

Pg::~Pg() {
  PQfinish(static_cast<PGconn*>(conn_));
}

bool Pg::ok() const {
  return error_.empty();
}

Rows Pg::query(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PGresult* r =
      PQexecParams(static_cast<PGconn*>(conn_), sql.c_str(), static_cast<int>(values.size()),
                   nullptr, values.data(), nullptr, nullptr, 0);
  auto status = PQresultStatus(r);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string e = PQresultErrorMessage(r);
    PQclear(r);
    throw std::runtime_error(sql + ": " + e);
  }
  Rows rows;
  for (int i = 0; i < PQntuples(r); ++i) {
    std::vector<std::string> row;
    for (int j = 0; j < PQnfields(r); ++j) row.emplace_back(PQgetvalue(r, i, j));
    rows.push_back(std::move(row));
  }
  PQclear(r);
  return rows;
}

std::string Pg::value(const std::string& sql, const std::vector<std::string>& params) {
  Rows rows = query(sql, params);
  return rows.empty() || rows[0].empty() ? std::string() : rows[0][0];
}

TempDatabase::TempDatabase(const std::string& tag) {
  admin_ = test_dsn();
  if (admin_.empty()) throw std::runtime_error("no test PostgreSQL (scripts/pg-private start)");
  static int n = 0;
  name_ = "luacs_it_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(++n);
  Pg pg(admin_);
  if (!pg.ok()) throw std::runtime_error("cannot reach the test PostgreSQL: " + pg.error());
  pg.query("DROP DATABASE IF EXISTS " + name_);
  pg.query("CREATE DATABASE " + name_);
  dsn_ = admin_ + " dbname=" + name_;
}

TempDatabase::~TempDatabase() {
  try {
    Pg pg(admin_);
    if (pg.ok()) pg.query("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (...) {
  }
}

}  // namespace luacs::test
