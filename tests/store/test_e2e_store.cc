// luacs with its PostgreSQL store, end to end: the real binary, real HTTP,
// the private PostgreSQL cluster (started by the ctest fixture).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/luacs_process.h"
#include "support/pg.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::CpeClient;
using test::HttpResponse;
using test::inform_xml;
using test::LuacsProcess;
using test::message_xml;
using test::parse_ok;
using test::Pg;
using test::TempDatabase;

namespace {

std::string ini(const std::string& extra = "") {
  return "[cwmp]\nlisten = 127.0.0.1:0\nworkers = 2\n[store]\nsql_dir = " +
         std::string(LUACS_SOURCE_DIR) + "/sql\nflush_interval = 5ms\n" + extra +
         "[log]\nlevel = info\n";
}

const std::string kDevice = "E48D8C-hAP%20lite-";

// One plain session; true when it completed with 204.
bool plain_session(uint16_t port, const std::string& serial,
                   const std::vector<soap::EventStruct>& events = {{"2 PERIODIC", ""}}) {
  CpeClient c(port);
  if (c.post(inform_xml(serial, "E48D8C", "hAP lite", events)).status != 200) return false;
  return c.post("").status == 204;
}

#ifndef LUACS_LOADGEN
#define LUACS_LOADGEN ""  // built without bench/: the load tests skip
#endif

// Runs the load generator in the background until it ends or is joined.
struct Load {
  std::thread thread;
  int status = -1;
  std::string output;
  Load(uint16_t port, const std::string& args) {
    thread = std::thread([this, port, args] {
      std::string cmd = std::string(LUACS_LOADGEN) +
                        " --url http://127.0.0.1:" + std::to_string(port) + "/ " + args + " 2>&1";
      FILE* p = popen(cmd.c_str(), "r");
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
      int st = pclose(p);
      status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    });
  }
  ~Load() {
    if (thread.joinable()) thread.join();
  }
  void join() { thread.join(); }
};

}  // namespace

TEST(StoreHttp, InformsPersistAcrossRestarts) {
  TempDatabase db("persist");
  {
    LuacsProcess luacs(ini(), {"--store-dsn", db.dsn()});
    ASSERT_TRUE(luacs.started()) << luacs.log();
    CpeClient c(luacs.port());
    ASSERT_EQ(c.post(inform_xml("P1", "E48D8C", "hAP lite", {{"0 BOOTSTRAP", ""}, {"1 BOOT", ""}},
                                {{"Device.DeviceInfo.UpTime", "42", "unsignedInt"}}))
                  .status,
              200);
    ASSERT_EQ(c.post("").status, 204);
    EXPECT_EQ(luacs.stop(), 0) << luacs.log();
  }
  Pg pg(db.dsn());
  auto rows = pg.query(
      "SELECT oui, product_class, serial_number, manufacturer, data_model_root, remote_address,"
      " array_to_string(last_events, '|'), parameters->'Device.DeviceInfo.UpTime'->>0,"
      " parameters->'Device.DeviceInfo.UpTime'->>1, last_boot IS NOT NULL,"
      " last_bootstrap IS NOT NULL FROM devices WHERE id = $1",
      {kDevice + "P1"});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "E48D8C");
  EXPECT_EQ(rows[0][1], "hAP lite");
  EXPECT_EQ(rows[0][2], "P1");
  EXPECT_EQ(rows[0][3], "MikroTik");
  EXPECT_EQ(rows[0][4], "Device");
  EXPECT_EQ(rows[0][5], "127.0.0.1");
  EXPECT_EQ(rows[0][6], "0 BOOTSTRAP|1 BOOT");
  EXPECT_EQ(rows[0][7], "42");
  EXPECT_EQ(rows[0][8], "unsignedInt");
  EXPECT_EQ(rows[0][9], "t");
  EXPECT_EQ(rows[0][10], "t");
  EXPECT_EQ(pg.value("SELECT count(*) FROM session_log WHERE device_id = $1", {kDevice + "P1"}),
            "1");

  // A restarted luacs knows the device: a task queued now reaches it, and
  // first_seen stays the first.
  std::string first_seen =
      pg.value("SELECT first_seen FROM devices WHERE id = $1", {kDevice + "P1"});
  pg.query("INSERT INTO tasks (device_id, name, args) VALUES ($1, 'tag', '{\"tag\": \"seen\"}')",
           {kDevice + "P1"});
  LuacsProcess again(ini(), {"--store-dsn", db.dsn()});
  ASSERT_TRUE(again.started()) << again.log();
  ASSERT_TRUE(plain_session(again.port(), "P1"));
  EXPECT_EQ(again.stop(), 0) << again.log();
  EXPECT_EQ(pg.value("SELECT first_seen FROM devices WHERE id = $1", {kDevice + "P1"}), first_seen);
  EXPECT_EQ(
      pg.value("SELECT array_to_string(tags, ',') FROM devices WHERE id = $1", {kDevice + "P1"}),
      "seen")
      << again.log();
}

TEST(StoreHttp, TasksTagsFaultsAndTransfersRoundTrip) {
  TempDatabase db("tasks");
  Pg pg(db.dsn());
  LuacsProcess luacs(ini(), {"--store-dsn", db.dsn()});
  ASSERT_TRUE(luacs.started()) << luacs.log();
  const std::string dev = kDevice + "T1";
  auto task = [&](const std::string& name, const std::string& args) {
    return pg.value("INSERT INTO tasks (device_id, name, args) VALUES ($1, $2, $3) RETURNING id",
                    {dev, name, args});
  };
  std::string t_tag = task("tag", R"({"tag": "gold"})");
  std::string t_untag = task("untag", R"({"tag": "none-yet"})");
  std::string t_gpv = task("GetParameterValues", R"({"names": ["Device.DeviceInfo.UpTime"]})");
  std::string t_spv =
      task("SetParameterValues", R"({"values": {"Device.WiFi.SSID.1.SSID": "test_12345"}})");
  // Tasks run in the order queued; faults of one source keep the last one.
  std::string t_junk = task("Frobnicate", "{}");
  std::string t_bad = task("GetParameterValues", R"({"names": ["Device.Nope."]})");

  CpeClient c(luacs.port());
  ASSERT_EQ(
      c.post(inform_xml("T1", "E48D8C", "hAP lite",
                        {{"1 BOOT", ""}, {"7 TRANSFER COMPLETE", ""}, {"M Download", "fw-1"}}))
          .status,
      200);
  // The transfer result is in the database before the CPE hears it arrived.
  soap::TransferComplete tc;
  tc.command_key = "fw-1";
  tc.start_time = "2026-11-21T10:00:00Z";
  tc.complete_time = "2026-11-21T10:01:00Z";
  HttpResponse r = c.post(message_xml(tc, "tc-1"));
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(std::holds_alternative<soap::TransferCompleteResponse>(parse_ok(r.body).body));
  EXPECT_EQ(
      pg.value("SELECT fault_code || '/' || complete_time FROM transfers WHERE device_id = $1 "
               "AND command_key = 'fw-1' AND completed_at IS NOT NULL",
               {dev}),
      "0/2026-11-21T10:01:00Z");

  // The ACS turn: the RPC tasks, in order.
  r = c.post("");
  int answered = 0;
  while (r.status == 200) {
    soap::Envelope req = parse_ok(r.body);
    std::string id = req.header.id.value_or("");
    if (auto* gpv = std::get_if<soap::GetParameterValues>(&req.body)) {
      if (gpv->names[0] == "Device.Nope.") {
        soap::Fault f;
        f.code = 9005;
        f.string = "Invalid parameter name";
        r = c.post(message_xml(f, id));
      } else {
        soap::GetParameterValuesResponse resp;
        resp.parameters = {{"Device.DeviceInfo.UpTime", "4711", "unsignedInt"}};
        r = c.post(message_xml(resp, id));
      }
    } else if (std::holds_alternative<soap::SetParameterValues>(req.body)) {
      r = c.post(message_xml(soap::SetParameterValuesResponse{0}, id));
    } else {
      FAIL() << "unexpected request " << soap::method_name(req.body);
    }
    ++answered;
  }
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(answered, 3);

  // The 204 came after the commit: everything is there already.
  auto state = [&](const std::string& id) {
    return pg.value("SELECT state FROM tasks WHERE id = $1", {id});
  };
  EXPECT_EQ(state(t_tag), "done");
  EXPECT_EQ(state(t_untag), "done");
  EXPECT_EQ(state(t_gpv), "done");
  EXPECT_EQ(state(t_spv), "done");
  EXPECT_EQ(state(t_bad), "fault");
  EXPECT_EQ(state(t_junk), "fault");
  EXPECT_EQ(
      pg.value("SELECT result->'Device.DeviceInfo.UpTime'->>0 FROM tasks WHERE id = $1", {t_gpv}),
      "4711");
  EXPECT_EQ(pg.value("SELECT array_to_string(tags, ',') FROM devices WHERE id = $1", {dev}),
            "gold");
  EXPECT_EQ(pg.value("SELECT parameters->'Device.DeviceInfo.UpTime'->>0 FROM devices WHERE id = $1",
                     {dev}),
            "4711");
  EXPECT_EQ(pg.value("SELECT parameters->'Device.WiFi.SSID.1.SSID'->>0 FROM devices WHERE id = $1",
                     {dev}),
            "test_12345");
  EXPECT_EQ(pg.value("SELECT code FROM faults WHERE device_id = $1 AND source = 'task' ", {dev}),
            "9005");

  // Tags removed by a later task; a task queued (by SQL, as another node
  // would) while the device is cached still reaches it: the insert's NOTIFY
  // drops the cached copy, a few milliseconds later.
  task("untag", R"({"tag": "gold"})");
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(plain_session(luacs.port(), "T1"));
  EXPECT_EQ(pg.value("SELECT array_to_string(tags, ',') FROM devices WHERE id = $1", {dev}), "");
  EXPECT_EQ(luacs.stop(), 0);
}

TEST(StoreHttp, AStoreThatFallsBehindGets503sNotLostWrites) {
  TempDatabase db("backlog");
  // Writes wait 1.5 s for their batch; two waiting is the most allowed.
  LuacsProcess luacs(
      "[cwmp]\nlisten = 127.0.0.1:0\nworkers = 1\n[limits]\nretry_after_s = 7\n[store]\nsql_dir "
      "= " +
          std::string(LUACS_SOURCE_DIR) +
          "/sql\nflush_interval = 1500ms\nbatch_rows = 1000\nmax_backlog = 2\n"
          "[log]\nlevel = info\n",
      {"--store-dsn", db.dsn()});
  ASSERT_TRUE(luacs.started()) << luacs.log();
  ASSERT_TRUE(plain_session(luacs.port(), "B1"));
  ASSERT_TRUE(plain_session(luacs.port(), "B2"));

  // A new session now is refused before anything is done for it.
  {
    CpeClient c(luacs.port());
    HttpResponse r = c.post(inform_xml("B3", "E48D8C", "hAP lite"));
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.header("retry-after"), "7");
    EXPECT_NE(r.body.find("Store behind"), std::string::npos) << r.body;
  }
  // Once the batch is committed, sessions are taken again.
  bool accepted = false;
  for (int i = 0; i < 50 && !accepted; ++i) {
    std::this_thread::sleep_for(100ms);
    accepted = plain_session(luacs.port(), "B3");
  }
  EXPECT_TRUE(accepted) << luacs.log();
  EXPECT_EQ(luacs.stop(), 0) << luacs.log();
  Pg pg(db.dsn());
  EXPECT_EQ(pg.value("SELECT count(*) FROM devices"), "3");
  EXPECT_EQ(pg.value("SELECT count(*) FROM session_log"), "3");
}

TEST(StoreHttp, TenThousandDevicesAreAllStored) {
  if (!*LUACS_LOADGEN) GTEST_SKIP() << "needs the load generator (LUACS_BENCH=ON)";
  TempDatabase db("tenk");
  LuacsProcess luacs(ini("batch_rows = 500\n"), {"--store-dsn", db.dsn()});
  ASSERT_TRUE(luacs.started()) << luacs.log();
  Load load(luacs.port(), "--devices 10000 --sessions 10000 --concurrency 32 --model mixed");
  load.join();
  EXPECT_EQ(load.status, 0) << load.output;
  EXPECT_EQ(luacs.stop(), 0);
  Pg pg(db.dsn());
  EXPECT_EQ(pg.value("SELECT count(*) FROM devices"), "10000");
  EXPECT_EQ(pg.value("SELECT count(*) FROM session_log"), "10000");
  EXPECT_EQ(pg.value("SELECT count(*) FROM devices WHERE parameters = '{}'::jsonb"), "0");
}

TEST(StoreHttp, SigkillUnderLoadLosesNoAcknowledgedWrite) {
  if (!*LUACS_LOADGEN) GTEST_SKIP() << "needs the load generator (LUACS_BENCH=ON)";
  TempDatabase db("kill");
  Pg pg(db.dsn());
  auto luacs =
      std::make_unique<LuacsProcess>(ini(), std::vector<std::string>{"--store-dsn", db.dsn()});
  ASSERT_TRUE(luacs->started()) << luacs->log();
  Load load(luacs->port(), "--devices 2000 --duration 4 --concurrency 16 --max-error-rate 1");

  // Meanwhile our own CPEs: a TransferComplete each, and a tag task each.
  std::vector<std::string> acked_transfers, acked_tags;
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> acked_plain;
  auto until = std::chrono::steady_clock::now() + 1500ms;
  for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
    std::string serial = "K" + std::to_string(i);
    pg.query("INSERT INTO tasks (device_id, name, args) VALUES ($1, 'tag', '{\"tag\": \"k\"}')",
             {kDevice + serial});
    CpeClient c(luacs->port());
    if (c.post(inform_xml(serial)).status != 200) continue;
    soap::TransferComplete tc;
    tc.command_key = "ck-" + serial;
    if (c.post(message_xml(tc, "tc")).status == 200) acked_transfers.push_back(serial);
    if (c.post("").status == 204) acked_tags.push_back(serial);
    if (plain_session(luacs->port(), "PL" + std::to_string(i)))
      acked_plain.emplace_back("PL" + std::to_string(i), std::chrono::steady_clock::now());
  }
  auto killed_at = std::chrono::steady_clock::now();
  luacs->kill9();
  ASSERT_GT(acked_transfers.size(), 5u);
  luacs.reset();
  load.join();

  for (const auto& serial : acked_transfers)
    EXPECT_EQ(pg.value("SELECT count(*) FROM transfers WHERE device_id = $1 AND command_key = $2",
                       {kDevice + serial, "ck-" + serial}),
              "1")
        << serial;
  for (const auto& serial : acked_tags) {
    EXPECT_EQ(pg.value("SELECT array_to_string(tags, ',') FROM devices WHERE id = $1",
                       {kDevice + serial}),
              "k")
        << serial;
    EXPECT_EQ(pg.value("SELECT state FROM tasks WHERE device_id = $1", {kDevice + serial}), "done");
  }
  // Last-seen updates are written behind: only the last flush interval (plus
  // the commit in flight) may be missing.
  for (const auto& [serial, at] : acked_plain) {
    if (killed_at - at < 500ms) continue;
    EXPECT_EQ(pg.value("SELECT count(*) FROM devices WHERE id = $1", {kDevice + serial}), "1")
        << serial;
  }
  // Every task is done or still pending (it runs again): none is lost.
  EXPECT_EQ(pg.value("SELECT count(*) FROM tasks WHERE state NOT IN ('done', 'pending')"), "0");

  // And the restarted server carries on from there.
  LuacsProcess again(ini(), {"--store-dsn", db.dsn()});
  ASSERT_TRUE(again.started()) << again.log();
  EXPECT_TRUE(plain_session(again.port(), "AFTER"));
  EXPECT_EQ(again.stop(), 0);
}
