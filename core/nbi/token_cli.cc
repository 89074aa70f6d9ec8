#include "core/nbi/token_cli.h"

#include <libpq-fe.h>

#include <chrono>
#include <optional>
#include <stdexcept>

#include "core/nbi/auth.h"
#include "core/nbi/exchange.h"
#include "core/store/migrate.h"

namespace luacs::nbi {

namespace {

constexpr const char* kUsage =
    "usage: luacs token add NAME --role read|operate|admin [--scope-tag TAG]\n"
    "       luacs token list\n"
    "       luacs token revoke NAME\n";

bool good_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool good_tag(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (const unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

using Result = std::unique_ptr<PGresult, loop::Deleter<PQclear>>;

Result exec(PGconn* conn, const char* sql, const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  Result r(PQexecParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                        nullptr, 0));
  const auto st = PQresultStatus(r.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    throw std::runtime_error(store::first_line(PQresultErrorMessage(r.get())));
  return r;
}

}  // namespace

int token_command(const std::string& dsn, const std::string& sql_dir,
                  const std::vector<std::string>& args, FILE* out, FILE* err) {
  if (args.empty()) {
    std::fputs(kUsage, err);
    return 2;
  }
  const std::string& verb = args[0];
  std::string name, role, scope;
  if (verb == "add") {
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--role" && i + 1 < args.size()) {
        role = args[++i];
      } else if (args[i] == "--scope-tag" && i + 1 < args.size()) {
        scope = args[++i];
      } else if (name.empty() && !args[i].empty() && args[i][0] != '-') {
        name = args[i];
      } else {
        std::fprintf(err, "luacs token: unexpected '%s'\n%s", args[i].c_str(), kUsage);
        return 2;
      }
    }
    if (!good_name(name)) {
      std::fprintf(err, "luacs token: a token needs a NAME of 1-64 characters [A-Za-z0-9._-]\n");
      return 2;
    }
    if (!parse_role(role)) {
      std::fprintf(err, "luacs token: --role must be read, operate or admin\n");
      return 2;
    }
    if (!scope.empty() && !good_tag(scope)) {
      std::fprintf(err, "luacs token: --scope-tag must be 1-128 printable characters\n");
      return 2;
    }
  } else if (verb == "revoke") {
    if (args.size() != 2) {
      std::fputs(kUsage, err);
      return 2;
    }
    name = args[1];
  } else if (verb != "list" || args.size() != 1) {
    std::fputs(kUsage, err);
    return 2;
  }
  if (dsn.empty()) {
    std::fprintf(err, "luacs token: tokens live in PostgreSQL; configure [store] dsn\n");
    return 1;
  }

  try {
    auto conn = store::connect_blocking(dsn, std::chrono::seconds(10));
    store::migrate(conn.get(), sql_dir);
    if (verb == "add") {
      const std::string secret = new_secret();
      std::optional<std::string> scope_param;
      if (!scope.empty()) scope_param = scope;
      Result r;
      try {
        r = exec(conn.get(),
                 "INSERT INTO api_tokens (name, role, scope_tag, hash) VALUES ($1, $2, $3, $4) "
                 "RETURNING id",
                 {name, role, scope_param, hash_secret(secret)});
      } catch (const std::runtime_error& e) {
        if (std::string_view(e.what()).find("duplicate key") != std::string_view::npos) {
          std::fprintf(err, "luacs token: a token named '%s' exists; revoke it first\n",
                       name.c_str());
          return 1;
        }
        throw;
      }
      const int64_t id = std::stoll(PQgetvalue(r.get(), 0, 0));
      std::fprintf(out, "%s\n", token_text(id, secret).c_str());
      std::fprintf(err,
                   "luacs token: '%s' (role %s%s%s) created; the token above is shown only "
                   "once\n",
                   name.c_str(), role.c_str(), scope.empty() ? "" : ", scope tag ", scope.c_str());
      return 0;
    }
    if (verb == "list") {
      auto r = exec(conn.get(),
                    "SELECT name, role, coalesce(scope_tag, ''), "
                    "to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                    "FROM api_tokens ORDER BY name",
                    {});
      std::fprintf(out, "%-24s %-8s %-20s %s\n", "NAME", "ROLE", "SCOPE-TAG", "CREATED");
      for (int i = 0; i < PQntuples(r.get()); ++i) {
        const char* scope_tag = PQgetvalue(r.get(), i, 2);
        std::fprintf(out, "%-24s %-8s %-20s %s\n", PQgetvalue(r.get(), i, 0),
                     PQgetvalue(r.get(), i, 1), *scope_tag ? scope_tag : "-",
                     PQgetvalue(r.get(), i, 3));
      }
      return 0;
    }
    // The running API caches checked tokens for a few seconds: told, it
    // forgets this one at once.
    auto r = exec(conn.get(),
                  "WITH d AS (DELETE FROM api_tokens WHERE name = $1 RETURNING id)"
                  " SELECT pg_notify('luacs_token', id::text) FROM d",
                  {name});
    if (PQntuples(r.get()) != 1) {
      std::fprintf(err, "luacs token: no token named '%s'\n", name.c_str());
      return 1;
    }
    std::fprintf(out, "revoked %s\n", name.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(err, "luacs token: %s\n", e.what());
    return 1;
  }
}

}  // namespace luacs::nbi
