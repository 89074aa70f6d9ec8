// The real luacs binary with a fresh database and its API, for the
// northbound API's tests: tokens are made with `luacs token add`, requests
// go over real HTTP to 127.0.0.1.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/http_client.h"
#include "support/luacs_process.h"
#include "support/pg.h"

namespace luacs::test {

struct CliResult {
  int status = -1;
  std::string out;  // stdout and stderr together
};

class ApiServer {
 public:
  // `extra_ini`: more configuration (whole sections), added after [cwmp],
  // [store] and [log]; `cwmp_ini`: the keys of [cwmp].
  explicit ApiServer(const std::string& tag, const std::string& extra_ini = "",
                     const std::string& cwmp_ini = "listen = 127.0.0.1:0\nworkers = 2");

  // Listening, and (over plain HTTP) ready: /readyz no longer says 503.
  bool started() const { return luacs_->started() && luacs_->api_port() != 0 && ready_; }
  uint16_t port() const { return luacs_->api_port(); }
  uint16_t cwmp_port() const { return luacs_->port(); }
  LuacsProcess& luacs() { return *luacs_; }
  const std::string& dsn() const { return db_.dsn(); }
  Pg& pg() { return *pg_; }

  // `luacs token -c <this config> ARGS...`.
  CliResult cli(const std::vector<std::string>& args);
  // A new token (fails the test and returns "" when it cannot be made).
  std::string token(const std::string& name, const std::string& role,
                    const std::string& scope_tag = "");

  HttpReply call(const std::string& token, const std::string& method, const std::string& target,
                 const std::string& body = "", HttpHeaders headers = {}) {
    return api_call(port(), token, method, target, body, std::move(headers));
  }

 private:
  TempDatabase db_;
  std::string ini_path_;
  std::unique_ptr<LuacsProcess> luacs_;
  std::unique_ptr<Pg> pg_;
  bool ready_ = true;
};

}  // namespace luacs::test
