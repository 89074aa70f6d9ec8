// PostgreSQL stopped and started again under load. This test runs its own
// private cluster (LUACS_PG_DIR) so stopping it disturbs no other test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/luacs_process.h"
#include "support/pg.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::CpeClient;
using test::inform_xml;
using test::LuacsProcess;
using test::Pg;

namespace {

struct PrivateCluster {
  std::string dir;
  explicit PrivateCluster(std::string d) : dir(std::move(d)) {}
  ~PrivateCluster() {
    run("stop");
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::canonical(dir, ec), ec);
    std::filesystem::remove_all(dir, ec);
  }
  std::string run(const std::string& verb, int* status = nullptr) const {
    std::string cmd = "LUACS_PG_DIR='" + dir + "' " + std::string(LUACS_SOURCE_DIR) +
                      "/scripts/pg-private " + verb + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    int st = pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
  }
};

bool plain_session(uint16_t port, const std::string& serial, int* status = nullptr) {
  CpeClient c(port);
  auto r = c.post(inform_xml(serial));
  if (status) *status = r.status;
  if (r.status != 200) return false;
  return c.post("").status == 204;
}

}  // namespace

TEST(StoreOutage, PostgresStoppedAndRestartedUnderLoad) {
  PrivateCluster pgc("/tmp/luacs-outage-" + std::to_string(getpid()));
  int st = 0;
  std::string out = pgc.run("start", &st);
  ASSERT_EQ(st, 0) << out;
  std::string dsn = pgc.run("dsn");
  while (!dsn.empty() && dsn.back() == '\n') dsn.pop_back();

  LuacsProcess luacs(
      "[cwmp]\nlisten = 127.0.0.1:0\nworkers = 2\n[limits]\nretry_after_s = 7\n[store]\nsql_dir "
      "= " +
          std::string(LUACS_SOURCE_DIR) + "/sql\n[log]\nlevel = info\n",
      {"--store-dsn", dsn});
  ASSERT_TRUE(luacs.started()) << luacs.log();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(plain_session(luacs.port(), "W" + std::to_string(i)));

  // Background load through the whole outage.
  std::atomic<bool> stop_load{false};
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::thread load([&] {
    for (int i = 0; !stop_load; ++i) {
      int status = 0;
      if (plain_session(luacs.port(), "L" + std::to_string(i % 300), &status))
        ++ok;
      else if (status == 503)
        ++busy;
      else
        ++other;
      std::this_thread::sleep_for(2ms);
    }
  });

  // A session in flight when PostgreSQL goes away.
  CpeClient inflight(luacs.port());
  ASSERT_EQ(inflight.post(inform_xml("INFLIGHT")).status, 200);

  std::this_thread::sleep_for(300ms);
  out = pgc.run("stop", &st);
  ASSERT_EQ(st, 0) << out;

  // New sessions are refused with 503 + Retry-After while it is down.
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    CpeClient c(luacs.port());
    auto r = c.post(inform_xml("DOWN" + std::to_string(i)));
    if (r.status == 503) {
      refused = true;
      EXPECT_EQ(r.header("retry-after"), "7");
    } else {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_TRUE(refused) << luacs.log();
  // ...and the session in flight completes.
  EXPECT_EQ(inflight.post("").status, 204);

  out = pgc.run("start", &st);
  ASSERT_EQ(st, 0) << out;
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {
    back = plain_session(luacs.port(), "BACK" + std::to_string(i));
    if (!back) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(back) << luacs.log();
  stop_load = true;
  load.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(busy.load(), 0);
  EXPECT_EQ(other.load(), 0);

  EXPECT_EQ(luacs.stop(), 0) << luacs.log();
  // Nothing lost: every session that identified a device left its row.
  size_t sessions = luacs.count("session device=") - luacs.count("session device=-");
  Pg pg(dsn);
  ASSERT_TRUE(pg.ok()) << pg.error();
  EXPECT_EQ(pg.value("SELECT count(*) FROM session_log"), std::to_string(sessions));
  EXPECT_EQ(pg.value("SELECT count(*) FROM devices WHERE id = 'E48D8C-hAP%20lite-INFLIGHT'"), "1");
}

// A result the CPE may only hear of once it is stored (here a
// TransferComplete) while PostgreSQL is gone: after [store] durable_timeout
// the CPE gets 503 + Retry-After, in words, not a silent close or a wait
// past its own timeout; sent again once PostgreSQL is back, it is stored and
// answered.
TEST(StoreOutage, AResultThatCannotBeStoredIsAnswered503) {
  PrivateCluster pgc("/tmp/luacs-outage-tc-" + std::to_string(getpid()));
  int st = 0;
  std::string out = pgc.run("start", &st);
  ASSERT_EQ(st, 0) << out;
  std::string dsn = pgc.run("dsn");
  while (!dsn.empty() && dsn.back() == '\n') dsn.pop_back();

  LuacsProcess luacs(
      "[cwmp]\nlisten = 127.0.0.1:0\nworkers = 1\n[limits]\nretry_after_s = "
      "7\n[store]\ndurable_timeout = 1s\nsql_dir = " +
          std::string(LUACS_SOURCE_DIR) + "/sql\n[log]\nlevel = info\n",
      {"--store-dsn", dsn});
  ASSERT_TRUE(luacs.started()) << luacs.log();
  const std::vector<soap::EventStruct> events = {{"7 TRANSFER COMPLETE", ""},
                                                 {"M Download", "fw-9"}};
  soap::TransferComplete tc;
  tc.command_key = "fw-9";
  tc.start_time = "2026-11-21T10:00:00Z";
  tc.complete_time = "2026-11-21T10:01:00Z";

  CpeClient c(luacs.port());
  ASSERT_EQ(c.post(inform_xml("TC9", "E48D8C", "hAP lite", events)).status, 200);
  out = pgc.run("stop", &st);
  ASSERT_EQ(st, 0) << out;
  const auto sent = std::chrono::steady_clock::now();
  auto r = c.post(test::message_xml(tc, "tc-9"));
  const auto took = std::chrono::steady_clock::now() - sent;
  EXPECT_EQ(r.status, 503) << r.body << luacs.log();
  EXPECT_EQ(r.header("retry-after"), "7");
  EXPECT_LT(took, 9s) << "answered after the durable timeout (1 s), not the CPE's own";

  out = pgc.run("start", &st);
  ASSERT_EQ(st, 0) << out;
  bool stored = false;
  for (int i = 0; i < 200 && !stored; ++i) {
    CpeClient again(luacs.port());
    if (again.post(inform_xml("TC9", "E48D8C", "hAP lite", events)).status == 200) {
      auto a = again.post(test::message_xml(tc, "tc-9b"));
      stored = a.status == 200 &&
               std::holds_alternative<soap::TransferCompleteResponse>(test::parse_ok(a.body).body);
    }
    if (!stored) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(stored) << luacs.log();
  Pg pg(dsn);
  ASSERT_TRUE(pg.ok()) << pg.error();
  EXPECT_EQ(pg.value("SELECT count(*) FROM transfers WHERE command_key = 'fw-9' AND completed_at "
                     "IS NOT NULL"),
            "1");
  EXPECT_EQ(luacs.stop(), 0) << luacs.log();
}
