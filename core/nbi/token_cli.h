// `luacs token add|list|revoke`: API tokens, straight in PostgreSQL.
//
// Blocking libpq: the command line only, never a server loop.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace luacs::nbi {

// args: what follows "token" on the command line. Applies the migrations
// first (a fresh database gets its tables). Returns the exit status; the
// new token goes to `out`, problems to `err` as "luacs token: ...".
int token_command(const std::string& dsn, const std::string& sql_dir,
                  const std::vector<std::string>& args, FILE* out, FILE* err);

}  // namespace luacs::nbi
