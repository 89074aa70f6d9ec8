// The Store against a real PostgreSQL: write-behind batches, the device
// cache, durable writes, housekeeping.
#include "core/store/store.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/store/pg_test.h"

namespace luacs::store {
namespace {

using namespace std::chrono_literals;
using test::query;
using test::scalar;

auto* const g_db = static_cast<test::TestDatabase*>(
    ::testing::AddGlobalTestEnvironment(new test::TestDatabase("store")));

Time at(int64_t epoch_ms) {
  return Time(std::chrono::milliseconds(epoch_ms));
}

SessionResult session(const std::string& serial, int64_t inform_ms,
                      std::vector<std::string> events = {"2 PERIODIC"}) {
  SessionResult r;
  r.device_id = "00E04C-Router-" + serial;
  r.identity = {"Realtek", "00E04C", "Router", serial};
  r.data_model_root = "Device";
  r.remote_address = "192.0.2.7";
  r.inform_time = at(inform_ms);
  for (auto& e : events) r.events.push_back({e, ""});
  r.parameters.push_back({{"Device.DeviceInfo.SoftwareVersion", "1.2.3", "string"}, at(inform_ms)});
  r.parameters.push_back({{"Device.ManagementServer.PeriodicInformInterval", "300", "unsignedInt"},
                          at(inform_ms + 1)});
  r.summary = R"({"result":"ok","rpcs":0})";
  return r;
}

class StoreTest : public test::StoreFixture {
 protected:
  StoreTest() : StoreFixture(*g_db) {}
  void SetUp() override {
    StoreFixture::SetUp();
    opts_.reconnect_min = 20ms;
    opts_.reconnect_max = 200ms;
  }
  void reopen() {
    store_->close();
    store_.reset();
    open();
  }
  // Waits until `n` queued items have been written.
  bool written(uint64_t n) {
    return test::eventually([&] { return store_->stats().rows_written >= n; });
  }
  std::shared_ptr<const Device> load(const std::string& id) {
    std::shared_ptr<const Device> got;
    bool done = false, ok = false;
    store_->load_device(id, done_.executor(), [&](std::shared_ptr<const Device> d, bool k) {
      got = std::move(d);
      ok = k;
      done = true;
    });
    EXPECT_TRUE(done_.run_until([&] { return done; }));
    EXPECT_TRUE(ok);
    return got;
  }
};

TEST_F(StoreTest, SessionsBecomeRows) {
  open();
  SessionResult r = session("A1", 1'700'000'000'123, {"0 BOOTSTRAP", "1 BOOT"});
  r.parameters.push_back({{"Device.X.Quote", "say \"hi\"\\ {a,b}\n", "string"}, Time{}});
  store_->write_session(std::move(r));
  store_->write_session(session("B2", 1'700'000'000'500));
  ASSERT_TRUE(written(2));

  query(conn_.get(), "SET TIME ZONE 'UTC'");
  auto rows = query(conn_.get(),
                    "SELECT id, oui, product_class, serial_number, manufacturer, data_model_root,"
                    " first_seen, last_inform, last_boot, last_bootstrap, remote_address,"
                    " last_events::text, tags::text FROM devices ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{
                         "00E04C-Router-A1", "00E04C", "Router", "A1", "Realtek", "Device",
                         "2023-11-14 22:13:20.123+00", "2023-11-14 22:13:20.123+00",
                         "2023-11-14 22:13:20.123+00", "2023-11-14 22:13:20.123+00", "192.0.2.7",
                         "{\"0 BOOTSTRAP\",\"1 BOOT\"}", "{}"}));
  EXPECT_EQ(rows[1][8], "<null>") << "no BOOT event, no last_boot";

  // Parameters: [value, type, read_at epoch seconds].
  const auto params = nlohmann::json::parse(
      sql("SELECT parameters::text FROM devices WHERE id = '00E04C-Router-A1'"));
  EXPECT_EQ(params["Device.DeviceInfo.SoftwareVersion"],
            nlohmann::json::parse(R"(["1.2.3", "string", 1700000000.123])"));
  EXPECT_EQ(params["Device.ManagementServer.PeriodicInformInterval"],
            nlohmann::json::parse(R"(["300", "unsignedInt", 1700000000.124])"));
  EXPECT_EQ(params["Device.X.Quote"][0], "say \"hi\"\\ {a,b}\n");
  EXPECT_EQ(params["Device.X.Quote"][2], 1700000000.123) << "no read time: the inform time";

  EXPECT_EQ(sql("SELECT count(*) FROM session_log"), "2");
  EXPECT_EQ(sql("SELECT summary->>'result' FROM session_log WHERE device_id = '00E04C-Router-B2'"),
            "ok");

  // A later session updates, keeps first_seen and last_boot, merges parameters.
  SessionResult later = session("A1", 1'700'000'100'000);
  later.parameters = {
      {{"Device.DeviceInfo.SoftwareVersion", "1.2.4", "string"}, at(1'700'000'100'000)}};
  later.remote_address = "198.51.100.9";
  store_->write_session(std::move(later));
  ASSERT_TRUE(written(3));
  rows = query(conn_.get(),
               "SELECT first_seen, last_inform, last_boot, remote_address, last_events::text,"
               " parameters->'Device.DeviceInfo.SoftwareVersion'->>0,"
               " parameters->'Device.X.Quote'->>1 FROM devices WHERE id = '00E04C-Router-A1'");
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"2023-11-14 22:13:20.123+00", "2023-11-14 22:15:00+00",
                                      "2023-11-14 22:13:20.123+00", "198.51.100.9",
                                      "{\"2 PERIODIC\"}", "1.2.4", "string"}));
}

TEST_F(StoreTest, LoadsWhatWasWrittenFromPostgresAndThenFromTheCache) {
  open();
  EXPECT_EQ(load("00E04C-Router-C3"), nullptr) << "unknown device";
  SessionResult r = session("C3", 1'700'000'000'000, {"1 BOOT"});
  r.tags_added = {"adopted", "wifi"};
  store_->write_session(std::move(r), done_.executor(), [](bool ok) { EXPECT_TRUE(ok); });
  ASSERT_TRUE(written(1));

  reopen();  // an empty cache: this load reads PostgreSQL
  const Stats before = store_->stats();
  auto d = load("00E04C-Router-C3");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(store_->stats().cache_misses, before.cache_misses + 1);
  EXPECT_EQ(d->oui, "00E04C");
  EXPECT_EQ(d->product_class, "Router");
  EXPECT_EQ(d->serial_number, "C3");
  EXPECT_EQ(d->manufacturer, "Realtek");
  EXPECT_EQ(d->data_model_root, "Device");
  EXPECT_EQ(d->first_seen, at(1'700'000'000'000));
  EXPECT_EQ(d->last_inform, at(1'700'000'000'000));
  EXPECT_EQ(d->last_boot, at(1'700'000'000'000));
  EXPECT_FALSE(d->last_bootstrap);
  EXPECT_EQ(d->remote_address, "192.0.2.7");
  EXPECT_EQ(d->last_events, (std::vector<std::string>{"1 BOOT"}));
  EXPECT_EQ(d->tags, (std::set<std::string>{"adopted", "wifi"}));
  EXPECT_EQ(d->parameters.at("Device.ManagementServer.PeriodicInformInterval"),
            (StoredParameter{"300", "unsignedInt", at(1'700'000'000'001)}));

  // Second load and cached(): no PostgreSQL.
  auto again = load("00E04C-Router-C3");
  EXPECT_EQ(again, d);
  EXPECT_EQ(store_->cached("00E04C-Router-C3"), d);
  EXPECT_EQ(store_->stats().cache_hits, before.cache_hits + 2);
  EXPECT_EQ(store_->stats().cache_misses, before.cache_misses + 1);

  // write_session updates the cache at once, before any flush.
  SessionResult next = session("C3", 1'700'000'200'000);
  next.tags_removed = {"wifi"};
  next.parameters = {{{"Device.New", "v", "string"}, at(1'700'000'200'000)}};
  store_->write_session(std::move(next));
  auto now = store_->cached("00E04C-Router-C3");
  ASSERT_NE(now, nullptr);
  EXPECT_EQ(now->tags, (std::set<std::string>{"adopted"}));
  EXPECT_EQ(now->parameters.at("Device.New").value, "v");
  EXPECT_EQ(now->parameters.size(), 3u);
  EXPECT_EQ(now->last_inform, at(1'700'000'200'000));
  EXPECT_EQ(now->first_seen, at(1'700'000'000'000));
  EXPECT_EQ(d->tags.size(), 2u) << "a snapshot handed out never changes";
}

TEST_F(StoreTest, LoadsParametersOfEveryShapeTheColumnMayHold) {
  // Rows written by hand or by an older luacs: a number as the value, a
  // short array, a bare value, a type that is not a string, escapes.
  open();
  sql("INSERT INTO devices (id, first_seen, last_inform, parameters) VALUES ('odd', now(), now(),"
      " '{\"A\": [\"v \\\"q\\\" \\u00e9\", \"string\", 1700000000.5],"
      " \"B\": [42, \"int\", 1700000001], \"C\": \"bare\", \"D\": [\"x\"],"
      " \"E\": [\"y\", 7, \"not a time\"], \"F\": [\"z\", \"boolean\", 1700000002, \"extra\"]}') "
      "RETURNING 1");
  reopen();
  auto d = load("odd");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->parameters.size(), 6u);
  EXPECT_EQ(d->parameters.at("A"),
            (StoredParameter{"v \"q\" \u00e9", "string", at(1'700'000'000'500)}));
  EXPECT_EQ(d->parameters.at("B"), (StoredParameter{"42", "int", at(1'700'000'001'000)}));
  EXPECT_EQ(d->parameters.at("C"), StoredParameter{});
  EXPECT_EQ(d->parameters.at("D"), StoredParameter{});
  EXPECT_EQ(d->parameters.at("E"), (StoredParameter{"y", "string", Time{}}));
  EXPECT_EQ(d->parameters.at("F"), (StoredParameter{"z", "boolean", at(1'700'000'002'000)}));

  // The same without the number value (which the streaming reader leaves to
  // the tree reader): read by the streaming reader alone.
  sql("INSERT INTO devices (id, first_seen, last_inform, parameters) SELECT 'odd2', now(), now(),"
      " parameters - 'B' FROM devices WHERE id = 'odd' RETURNING 1");
  auto d2 = load("odd2");
  ASSERT_NE(d2, nullptr);
  auto expected = d->parameters;
  expected.erase("B");
  EXPECT_EQ(d2->parameters, expected);
}

TEST_F(StoreTest, BatchesManySessionsIntoFewStatements) {
  opts_.batch_rows = 500;
  opts_.flush_interval = 5ms;
  open();
  constexpr int kDevices = 3000;
  for (int i = 0; i < kDevices; ++i)
    store_->write_session(session("N" + std::to_string(i), 1'700'000'000'000 + i));
  ASSERT_TRUE(written(kDevices));
  const Stats s = store_->stats();
  EXPECT_EQ(s.rows_written, static_cast<uint64_t>(kDevices));
  EXPECT_LT(s.batches, s.rows_written / 10) << "batches " << s.batches;
  EXPECT_GT(s.max_batch_rows, 10u);
  EXPECT_LE(s.max_batch_rows, 500u);
  EXPECT_EQ(sql("SELECT count(*) FROM devices"), std::to_string(kDevices));
  EXPECT_EQ(sql("SELECT count(*) FROM session_log"), std::to_string(kDevices));
  std::cout << "[ batches ] " << s.batches << " batches for " << s.rows_written << " rows, max "
            << s.max_batch_rows << "\n";
}

TEST_F(StoreTest, SameDeviceTwiceInOneBatchIsMerged) {
  opts_.flush_interval = 300ms;  // both land in one batch
  open();
  SessionResult a = session("D4", 1'700'000'000'000, {"0 BOOTSTRAP"});
  a.tags_added = {"x", "y"};
  a.faults.push_back({"", "cwmp.9002", 9002, "Internal error", "{}"});
  SessionResult b = session("D4", 1'700'000'050'000, {"1 BOOT"});
  b.parameters = {{{"Device.DeviceInfo.SoftwareVersion", "2.0", "string"}, at(1'700'000'050'000)}};
  b.tags_removed = {"x"};
  b.tags_added = {"z"};
  b.faults.push_back({"", "cwmp.9002", 9002, "Internal error again", "{}"});
  store_->write_session(std::move(a));
  store_->write_session(std::move(b));
  ASSERT_TRUE(written(2));
  EXPECT_EQ(store_->stats().batches, 1u);
  query(conn_.get(), "SET TIME ZONE 'UTC'");
  auto rows = query(conn_.get(),
                    "SELECT first_seen, last_inform, last_boot, last_bootstrap, last_events::text,"
                    " tags::text, parameters->'Device.DeviceInfo.SoftwareVersion'->>0,"
                    " parameters ? 'Device.ManagementServer.PeriodicInformInterval' FROM devices");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"2023-11-14 22:13:20+00", "2023-11-14 22:14:10+00",
                                               "2023-11-14 22:14:10+00", "2023-11-14 22:13:20+00",
                                               "{\"1 BOOT\"}", "{y,z}", "2.0", "t"}));
  EXPECT_EQ(sql("SELECT count(*) FROM session_log"), "2");
  EXPECT_EQ(sql("SELECT retries || ' ' || message FROM faults"), "1 Internal error again");
}

// The client certificate a device logs in with: kept with the device; the
// same one again moves last_seen at most hourly, a new one (renewed)
// resets first_seen.
TEST_F(StoreTest, ClientCertificateIsKeptWithTheDevice) {
  open();
  const auto with_cert = [](int64_t ms, const std::string& sha256) {
    SessionResult r = session("C9", ms);
    ClientCertificate c;
    c.subject = "CN=C9";
    c.issuer = "CN=ISP CA,O=ISP";
    c.serial = "0a1b";
    c.sha256 = sha256;
    c.not_after = "2030-01-01T00:00:00Z";
    r.client_certificate = c;
    return r;
  };
  const int64_t t0 = 1'700'000'000'000;
  store_->write_session(with_cert(t0, "aa"));
  ASSERT_TRUE(written(1));
  query(conn_.get(), "SET TIME ZONE 'UTC'");
  const std::string row =
      "SELECT subject || ' ' || issuer || ' ' || serial || ' ' || sha256 || ' ' || not_after || "
      "' ' || first_seen || ' ' || last_seen FROM device_certificates WHERE device_id = "
      "'00E04C-Router-C9'";
  EXPECT_EQ(sql(row),
            "CN=C9 CN=ISP CA,O=ISP 0a1b aa 2030-01-01 00:00:00+00 2023-11-14 22:13:20+00 "
            "2023-11-14 22:13:20+00");
  store_->write_session(with_cert(t0 + 60'000, "aa"));  // a minute later: no rewrite
  store_->write_session(session("C9", t0 + 120'000));   // plain HTTP: keeps the row
  ASSERT_TRUE(written(3));
  EXPECT_EQ(sql("SELECT last_seen FROM device_certificates"), "2023-11-14 22:13:20+00");
  store_->write_session(with_cert(t0 + 7'200'000, "aa"));  // two hours later
  ASSERT_TRUE(written(4));
  EXPECT_EQ(sql("SELECT first_seen || ' ' || last_seen FROM device_certificates"),
            "2023-11-14 22:13:20+00 2023-11-15 00:13:20+00");
  store_->write_session(with_cert(t0 + 7'260'000, "bb"));  // renewed
  ASSERT_TRUE(written(5));
  EXPECT_EQ(sql("SELECT sha256 || ' ' || first_seen FROM device_certificates"),
            "bb 2023-11-15 00:14:20+00");
  EXPECT_EQ(sql("SELECT count(*) FROM device_certificates"), "1");
}

TEST_F(StoreTest, TagsRoundTrip) {
  open();
  SessionResult a = session("E5", 1'700'000'000'000);
  a.tags_added = {"b", "a", "with \"quote\" and, comma"};
  store_->write_session(std::move(a));
  ASSERT_TRUE(written(1));
  EXPECT_EQ(sql("SELECT tags::text FROM devices"), R"({a,b,"with \"quote\" and, comma"})");

  // A tag added elsewhere (the API) between two sessions is kept.
  query(conn_.get(), "UPDATE devices SET tags = tags || '{from-api}'");
  SessionResult b = session("E5", 1'700'000'001'000);
  b.tags_removed = {"a", "with \"quote\" and, comma", "never-there"};
  b.tags_added = {"c"};
  store_->write_session(std::move(b));
  ASSERT_TRUE(written(2));
  EXPECT_EQ(sql("SELECT tags::text FROM devices"), "{b,c,from-api}");
  reopen();
  EXPECT_EQ(load("00E04C-Router-E5")->tags, (std::set<std::string>{"b", "c", "from-api"}));
}

TEST_F(StoreTest, FaultsAreUpsertedWithRetries) {
  open();
  for (int i = 0; i < 3; ++i) {
    SessionResult r = session("F6", 1'700'000'000'000 + i * 1000);
    r.faults.push_back({"", "cwmp.9005", 9005, "Invalid parameter name " + std::to_string(i),
                        R"({"parameter":"Device.Nope"})"});
    if (i == 0) r.faults.push_back({"", "policy", 0, "boom", "not json"});
    bool ok = false;
    store_->write_session(std::move(r), done_.executor(), [&](bool k) { ok = k; });
    ASSERT_TRUE(done_.run_until([&] { return ok; }));
  }
  auto rows = query(conn_.get(),
                    "SELECT source, code, message, retries, detail::text, first_seen < last_seen"
                    " FROM faults ORDER BY source");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"cwmp.9005", "9005", "Invalid parameter name 2", "2",
                                               R"({"parameter": "Device.Nope"})", "t"}));
  EXPECT_EQ(rows[1][0], "policy");
  EXPECT_EQ(rows[1][3], "0");
  EXPECT_EQ(rows[1][4], R"("not json")") << "bad JSON detail stored as a JSON string";
}

TEST_F(StoreTest, TasksAreDurableLoadedWithTheDeviceAndFinished) {
  open();
  store_->write_session(session("G7", 1'700'000'000'000));
  ASSERT_TRUE(written(1));
  ASSERT_NE(load("00E04C-Router-G7"), nullptr);  // cached from here on

  Task t;
  t.device_id = "00E04C-Router-G7";
  t.name = "GetParameterValues";
  t.args = R"({"names":["Device.DeviceInfo."]})";
  int64_t id = 0;
  std::string visible;
  store_->add_task(t, done_.executor(), [&](int64_t got) {
    id = got;
    // Committed before the callback: another connection sees it.
    visible = sql("SELECT count(*) FROM tasks WHERE id = " + std::to_string(got));
  });
  ASSERT_TRUE(done_.run_until([&] { return id != 0; }));
  EXPECT_GT(id, 0);
  EXPECT_EQ(visible, "1");

  // The cached device has it at once; a fresh store loads it from PostgreSQL.
  auto d = load("00E04C-Router-G7");
  ASSERT_EQ(d->pending_tasks.size(), 1u);
  EXPECT_EQ(d->pending_tasks[0].id, id);
  EXPECT_EQ(d->pending_tasks[0].name, "GetParameterValues");
  EXPECT_EQ(nlohmann::json::parse(d->pending_tasks[0].args), nlohmann::json::parse(t.args));
  reopen();
  d = load("00E04C-Router-G7");
  ASSERT_EQ(d->pending_tasks.size(), 1u);
  EXPECT_EQ(d->pending_tasks[0].id, id);
  EXPECT_NE(d->pending_tasks[0].created, Time{});

  // The same unique_key while pending: one task, the newer args.
  Task k = t;
  k.name = "SetParameterValues";
  k.unique_key = "wifi";
  k.args = R"({"ssid":"one"})";
  int64_t k1 = 0, k2 = 0;
  store_->add_task(k, done_.executor(), [&](int64_t got) { k1 = got; });
  k.args = R"({"ssid":"two"})";
  store_->add_task(k, done_.executor(), [&](int64_t got) { k2 = got; });
  ASSERT_TRUE(done_.run_until([&] { return k1 && k2; }));
  EXPECT_EQ(k1, k2);
  d = load("00E04C-Router-G7");
  ASSERT_EQ(d->pending_tasks.size(), 2u);
  EXPECT_EQ(d->pending_tasks[1].unique_key, "wifi");
  EXPECT_EQ(nlohmann::json::parse(d->pending_tasks[1].args)["ssid"], "two");

  // An expired task is not handed out.
  Task old = t;
  old.expires = std::chrono::system_clock::now() - 1s;
  int64_t oid = 0;
  store_->add_task(old, done_.executor(), [&](int64_t got) { oid = got; });
  ASSERT_TRUE(done_.run_until([&] { return oid != 0; }));
  EXPECT_EQ(load("00E04C-Router-G7")->pending_tasks.size(), 2u);

  // The session that ran them reports results.
  SessionResult r = session("G7", 1'700'000'100'000);
  r.task_results.push_back({id, true, R"({"Device.DeviceInfo.Manufacturer":"Realtek"})"});
  r.task_results.push_back({k1, false, R"({"code":9007,"string":"Invalid value"})"});
  bool ok = false;
  store_->write_session(std::move(r), done_.executor(), [&](bool k) { ok = k; });
  EXPECT_TRUE(store_->cached("00E04C-Router-G7")->pending_tasks.empty())
      << "the cache knows at once";
  ASSERT_TRUE(done_.run_until([&] { return ok; }));
  auto rows = query(conn_.get(),
                    "SELECT id, state, result->>'code', finished IS NOT NULL FROM tasks"
                    " WHERE state <> 'pending' ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{std::to_string(id), "done", "<null>", "t"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{std::to_string(k1), "fault", "9007", "t"}));
}

TEST_F(StoreTest, TaskQueuedElsewhereReachesTheCachedDevice) {
  open();
  store_->write_session(session("H8", 1'700'000'000'000));
  ASSERT_TRUE(written(1));
  ASSERT_TRUE(load("00E04C-Router-H8")->pending_tasks.empty());
  // Another node, the API or a test inserts a task directly.
  query(conn_.get(), "INSERT INTO tasks (device_id, name) VALUES ('00E04C-Router-H8', 'Reboot')");
  ASSERT_TRUE(test::eventually([&] { return store_->cached("00E04C-Router-H8") == nullptr; }))
      << "the NOTIFY drops the cached copy";
  auto d = load("00E04C-Router-H8");
  ASSERT_EQ(d->pending_tasks.size(), 1u);
  EXPECT_EQ(d->pending_tasks[0].name, "Reboot");
}

TEST_F(StoreTest, TasksForADeviceNotYetSeenArriveWithItsFirstSession) {
  open();
  const std::string id = "00E04C-Router-NEW1";
  int64_t tid = 0;
  store_->add_task(Task{0, id, "Reboot", "{}", {}, {}, ""}, done_.executor(),
                   [&](int64_t got) { tid = got; });
  ASSERT_TRUE(done_.run_until([&] { return tid != 0; }));
  // Not stored yet, but handed out with its tasks (pre-provisioning by
  // serial): only an id and pending_tasks, no identity, no first_seen.
  auto pre = load(id);
  ASSERT_NE(pre, nullptr);
  EXPECT_EQ(pre->id, id);
  EXPECT_TRUE(pre->oui.empty());
  EXPECT_EQ(pre->first_seen, Time{});
  ASSERT_EQ(pre->pending_tasks.size(), 1u);
  EXPECT_EQ(store_->cached(id), nullptr) << "cached() knows only stored devices";
  store_->write_session(session("NEW1", 1'700'000'000'000));
  auto d = store_->cached(id);
  ASSERT_NE(d, nullptr) << "the first session builds the cached device";
  ASSERT_EQ(d->pending_tasks.size(), 1u);
  EXPECT_EQ(d->pending_tasks[0].id, tid);
  EXPECT_EQ(d->first_seen, at(1'700'000'000'000));
}

TEST_F(StoreTest, TransferResultIsCommittedBeforeTheCallback) {
  open();
  Transfer sent;
  sent.device_id = "00E04C-Router-I9";
  sent.command_key = "fw-6.49";
  sent.file_type = "1 Firmware Upgrade Image";
  sent.url = "http://acs.example/fw.npk";
  store_->record_transfer_sent(sent);

  Transfer done = sent;
  done.fault_code = 0;
  done.start_time = "2024-05-01T12:00:00Z";
  done.complete_time = "2024-05-01T12:01:00Z";
  std::optional<bool> ok;
  std::string seen;
  store_->write_transfer(done, done_.executor(), [&](bool k) {
    ok = k;
    seen = sql("SELECT count(*) FROM transfers WHERE completed_at IS NOT NULL");
  });
  ASSERT_TRUE(done_.run_until([&] { return ok.has_value(); }));
  EXPECT_TRUE(*ok);
  EXPECT_EQ(seen, "1");
  auto rows = query(conn_.get(),
                    "SELECT command_key, url, sent_at IS NOT NULL, fault_code, start_time,"
                    " complete_time, autonomous FROM transfers");
  ASSERT_EQ(rows.size(), 1u) << "the sent row was completed, not duplicated";
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"fw-6.49", "http://acs.example/fw.npk", "t", "0",
                                      "2024-05-01T12:00:00Z", "2024-05-01T12:01:00Z", "f"}));

  // Autonomous (or unknown) transfers get a row of their own.
  Transfer aut;
  aut.device_id = sent.device_id;
  aut.autonomous = true;
  aut.fault_code = 9010;
  aut.fault_string = "Download failure";
  ok.reset();
  store_->write_transfer(aut, done_.executor(), [&](bool k) { ok = k; });
  ASSERT_TRUE(done_.run_until([&] { return ok.has_value(); }));
  EXPECT_TRUE(*ok);
  EXPECT_EQ(sql("SELECT fault_code || ' ' || fault_string FROM transfers WHERE autonomous"),
            "9010 Download failure");
}

TEST_F(StoreTest, CloseFlushesEverything) {
  opts_.flush_interval = 60'000ms;  // nothing leaves on the timer
  opts_.batch_rows = 1000;
  open();
  for (int i = 0; i < 200; ++i)
    store_->write_session(session("J" + std::to_string(i), 1'700'000'000'000));
  Transfer t;
  t.device_id = "00E04C-Router-J0";
  store_->record_transfer_sent(t);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sql("SELECT count(*) FROM devices"), "0") << "still queued";
  store_->close();
  EXPECT_EQ(sql("SELECT count(*) FROM devices"), "200");
  EXPECT_EQ(sql("SELECT count(*) FROM session_log"), "200");
  EXPECT_EQ(sql("SELECT count(*) FROM transfers"), "1");
  EXPECT_EQ(store_->stats().pending, 0u);

  // After close: answered false, nothing queued.
  std::optional<bool> ok;
  store_->write_session(session("J0", 1'700'000'000'000), done_.executor(),
                        [&](bool k) { ok = k; });
  ASSERT_TRUE(done_.run_until([&] { return ok.has_value(); }));
  EXPECT_FALSE(*ok);
}

TEST_F(StoreTest, DurableWritesDoNotWaitForTheBatchTimer) {
  opts_.flush_interval = 60'000ms;
  open();
  for (int i = 0; i < 50; ++i)
    store_->write_session(session("L" + std::to_string(i), 1'700'000'000'000));
  const auto t0 = std::chrono::steady_clock::now();
  int64_t id = 0;
  std::optional<bool> ok;
  store_->add_task(Task{0, "00E04C-Router-L1", "Reboot", "{}", {}, {}, ""}, done_.executor(),
                   [&](int64_t got) { id = got; });
  Transfer t;
  t.device_id = "00E04C-Router-L2";
  t.autonomous = true;
  store_->write_transfer(t, done_.executor(), [&](bool k) { ok = k; });
  ASSERT_TRUE(done_.run_until([&] { return id && ok; }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_TRUE(*ok);
  EXPECT_EQ(sql("SELECT count(*) FROM devices"), "0") << "the batch still waits for its timer";
  EXPECT_TRUE(test::eventually([&] { return store_->stats().pending == 50u; }))
      << store_->stats().pending;
}

TEST_F(StoreTest, ManyLoadsAtOnce) {
  open();
  for (int i = 0; i < 100; ++i)
    store_->write_session(session("M" + std::to_string(i), 1'700'000'000'000));
  ASSERT_TRUE(written(100));
  reopen();
  int known = 0, unknown = 0, failed = 0;
  for (int i = 0; i < 600; ++i) {
    // 0..99 exist, twice each; the rest do not.
    const std::string id = "00E04C-Router-M" + std::to_string(i < 200 ? i % 100 : i);
    store_->load_device(id, done_.executor(), [&, id](std::shared_ptr<const Device> d, bool ok) {
      if (!ok)
        ++failed;
      else if (d) {
        EXPECT_EQ(d->id, id);
        ++known;
      } else {
        ++unknown;
      }
    });
  }
  ASSERT_TRUE(done_.run_until([&] { return known + unknown + failed == 600; }));
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(known, 200);
  EXPECT_EQ(unknown, 400);
  EXPECT_EQ(store_->stats().cache_size, 500u) << "100 devices and 400 known-absent ids";
}

TEST_F(StoreTest, ARefusedResultIsIsolatedAndTheRestWritten) {
  opts_.flush_interval = 200ms;  // all in one batch first
  open();
  int ok = 0, failed = 0;
  for (int i = 0; i < 9; ++i) {
    SessionResult r = session("K" + std::to_string(i), 1'700'000'000'000);
    // Invalid UTF-8: PostgreSQL refuses the whole statement.
    if (i == 6) r.parameters.push_back({{"Device.Bad", "\xff\xfe", "string"}, Time{}});
    store_->write_session(std::move(r), done_.executor(), [&](bool k) { (k ? ok : failed)++; });
  }
  ASSERT_TRUE(done_.run_until([&] { return ok + failed == 9; }));
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(store_->stats().rejected, 1u);
  EXPECT_EQ(sql("SELECT count(*) FROM devices"), "8");
  EXPECT_EQ(sql("SELECT count(*) FROM devices WHERE id = '00E04C-Router-K6'"), "0");
}

TEST_F(StoreTest, HousekeepingTrimsTheSessionLogAndExpiresTasks) {
  opts_.housekeeping_interval = 100ms;
  opts_.session_log_retention = std::chrono::hours(1);
  test::Conn c = test::connect(opts_.dsn);
  open();
  query(conn_.get(),
        "INSERT INTO session_log (device_id, at) SELECT 'old', now() - interval '2 hours'"
        " FROM generate_series(1, 7000)");
  query(conn_.get(), "INSERT INTO session_log (device_id, at) VALUES ('new', now())");
  query(
      conn_.get(),
      "INSERT INTO tasks (device_id, name, expires) VALUES ('x', 'Reboot', now() - interval '1 s'),"
      " ('x', 'Reboot', now() + interval '1 day')");
  ASSERT_TRUE(
      test::eventually([&] { return sql("SELECT count(*) FROM session_log") == "1"; }, 10s));
  EXPECT_EQ(sql("SELECT device_id FROM session_log"), "new");
  ASSERT_TRUE(test::eventually([&] {
    return sql("SELECT string_agg(state, ',' ORDER BY id) FROM tasks") == "expired,pending";
  }));
}

}  // namespace
}  // namespace luacs::store
