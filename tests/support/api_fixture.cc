#include "support/api_fixture.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace luacs::test {

namespace {

std::string base_ini(const std::string& dsn, const std::string& extra, const std::string& cwmp) {
  return "[cwmp]\n" + cwmp + "\n[store]\ndsn = " + dsn +
         "\nsql_dir = " + std::string(LUACS_SOURCE_DIR) + "/sql\nflush_interval = 5ms\n" + extra +
         "\n[log]\nlevel = info\n";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

ApiServer::ApiServer(const std::string& tag, const std::string& extra_ini,
                     const std::string& cwmp_ini)
    : db_(tag) {
  const std::string text = with_test_defaults(base_ini(db_.dsn(), extra_ini, cwmp_ini));
  ini_path_ = temp_file("api.ini", text);
  luacs_ = std::make_unique<LuacsProcess>(text);
  pg_ = std::make_unique<Pg>(db_.dsn());
  // luacs listens before its API's PostgreSQL connections are up (they
  // connect in the background); until then a token check is a 503 "store
  // unavailable". As any client should, wait while /readyz says 503 (an
  // API behind TLS does not answer this plain call: no wait).
  if (!started()) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (call("", "GET", "/readyz").status == 503) {
    if (std::chrono::steady_clock::now() > deadline) {
      ready_ = false;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

CliResult ApiServer::cli(const std::vector<std::string>& args) {
  std::string cmd = std::string(LUACS_BINARY) + " token -c " + shell_quote(ini_path_);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " 2>&1";
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string ApiServer::token(const std::string& name, const std::string& role,
                             const std::string& scope_tag) {
  std::vector<std::string> args = {"add", name, "--role", role};
  if (!scope_tag.empty()) {
    args.push_back("--scope-tag");
    args.push_back(scope_tag);
  }
  const auto r = cli(args);
  EXPECT_EQ(r.status, 0) << r.out;
  // The token is the line that starts with lcs_.
  const auto at = r.out.find("lcs_");
  if (at == std::string::npos) return "";
  return r.out.substr(at, r.out.find('\n', at) - at);
}

}  // namespace luacs::test
