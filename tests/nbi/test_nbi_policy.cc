// GET /policy and POST /policy/reload as the operator page shows them: the
// generation each worker runs new sessions with, the time spent in hooks,
// and a broken reload's file:line while the old generation keeps serving.
// Real binary, real PostgreSQL, real sockets.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/temp_dir.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::ApiServer;
using test::CpeClient;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

// A session up to the policy's hooks (they run once the CPE has no more
// requests): true when the empty POST was answered, with the end (204) or
// with what the policy asks of the device. That goes unanswered: closing
// the connection ends the session.
bool session(uint16_t port, const std::string& serial) {
  CpeClient c(port);
  if (c.post(test::inform_xml(serial)).status != 200) return false;
  const int status = c.post("").status;
  return status == 200 || status == 204;
}

// Sessions (each on a connection of its own, so both workers get some)
// until every worker reports `generation`; the last GET /policy.
nlohmann::json until_workers_run(ApiServer& api, const std::string& token, uint64_t generation) {
  nlohmann::json p;
  for (int i = 0; i < 40; ++i) {
    EXPECT_TRUE(session(api.cwmp_port(), "P" + std::to_string(i)));
    p = api.call(token, "GET", "/policy").json();
    bool all = p["workers"].is_array() && !p["workers"].empty();
    for (const auto& w : p["workers"]) all = all && w.value("generation", 0u) == generation;
    if (all) break;
  }
  return p;
}

}  // namespace

TEST(ApiPolicy, StatusSaysWhatEachWorkerRunsAndABrokenReloadKeepsTheOldOne) {
  TempDir dir("policy");
  for (const auto& e : fs::directory_iterator(std::string(LUACS_SOURCE_DIR) + "/policies/default"))
    fs::copy_file(e.path(), dir.path() + "/" + e.path().filename().string());
  ApiServer api("nbipolicy", "[policy]\ndir = " + dir.path() + "\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string read = api.token("noc", "read");
  const std::string admin = api.token("ops", "admin");

  auto p = until_workers_run(api, read, 1);
  EXPECT_EQ(p.value("generation", 0u), 1u) << p.dump();
  ASSERT_EQ(p["workers"].size(), 2u) << p.dump();  // [cwmp] workers = 2
  for (const auto& w : p["workers"]) {
    EXPECT_EQ(w.value("generation", 0u), 1u) << p.dump();
    EXPECT_GT(w.value("lua_bytes", 0u), 0u) << p.dump();
  }
  EXPECT_GT(p.value("hook_calls", 0u), 0u) << p.dump();
  EXPECT_GT(p.value("hook_seconds", 0.0), 0.0) << p.dump();
  EXPECT_EQ(p.value("loaded_at", "").size(), 20u) << p.dump();  // 2026-12-04T10:00:00Z
  EXPECT_FALSE(p.contains("last_error")) << p.dump();

  // A reload: the new generation serves; each worker takes it at its next
  // session.
  const auto ok = api.call(admin, "POST", "/policy/reload");
  ASSERT_EQ(ok.status, 200) << ok.body;
  p = until_workers_run(api, read, 2);
  EXPECT_EQ(p.value("generation", 0u), 2u) << p.dump();
  for (const auto& w : p["workers"]) EXPECT_EQ(w.value("generation", 0u), 2u) << p.dump();

  // A broken file: 422 naming file:line, generation 2 keeps serving, and
  // GET /policy says when and why the last load failed.
  dir.write("20-adoption.lua", "local x = \n\nfunction on_inform(\n");
  const auto bad = api.call(admin, "POST", "/policy/reload");
  ASSERT_EQ(bad.status, 422) << bad.body;
  p = api.call(read, "GET", "/policy").json();
  EXPECT_EQ(p.value("generation", 0u), 2u) << p.dump();
  EXPECT_NE(p.value("last_error", "").find("20-adoption.lua:"), std::string::npos) << p.dump();
  EXPECT_EQ(p.value("last_error_at", "").size(), 20u) << p.dump();
  EXPECT_EQ(p.value("load_failures", 0u), 1u) << p.dump();
  EXPECT_TRUE(session(api.cwmp_port(), "P-after"));
  p = api.call(read, "GET", "/policy").json();
  for (const auto& w : p["workers"]) EXPECT_EQ(w.value("generation", 0u), 2u) << p.dump();
}
