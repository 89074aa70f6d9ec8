// PostgreSQL stopped and started again under a running store. These tests
// stop a whole cluster, so they use one of their own (var/pg-outage, via
// LUACS_PG_DIR) and the other store tests keep running on var/pg.
#include <gtest/gtest.h>

#include "core/store/store.h"
#include "tests/store/pg_test.h"

namespace luacs::store {
namespace {

using namespace std::chrono_literals;
using test::query;
using test::scalar;

const std::string kSqlDir = LUACS_SOURCE_DIR "/sql";

std::string cluster(const std::string& cmd) {
  auto [out, rc] = test::run_command("LUACS_PG_DIR=" LUACS_SOURCE_DIR "/var/pg-outage " +
                                     test::pg_private() + " " + cmd + " 2>&1");
  if (rc != 0) throw std::runtime_error("pg-private " + cmd + ": " + out);
  return out;
}

SessionResult session(const std::string& serial, bool durable = false) {
  SessionResult r;
  r.device_id = "OUT-" + serial;
  r.identity = {"Vendor", "OUT", "Box", serial};
  r.inform_time = std::chrono::system_clock::now();
  r.events = {{"2 PERIODIC", ""}};
  r.parameters.push_back({{"Device.DeviceInfo.UpTime", "42", "unsignedInt"}, r.inform_time});
  if (durable) r.tags_added = {"kept"};
  return r;
}

class OutageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster("start");
    dsn_ = cluster("dsn");
  }
  static void TearDownTestSuite() { cluster("stop"); }

  void SetUp() override {
    cluster("start");
    conn_ = test::connect(dsn_);
    query(conn_.get(), "DROP SCHEMA IF EXISTS outage CASCADE");
    query(conn_.get(), "CREATE SCHEMA outage");
    conn_.reset();
    opts_.dsn = test::with_schema(dsn_, "outage");
    opts_.reconnect_min = 20ms;
    opts_.reconnect_max = 200ms;
    opts_.connect_timeout = 1000ms;
  }
  void TearDown() override {
    if (store_) store_->close();
  }
  std::string sql(const std::string& q) {
    if (!conn_) conn_ = test::connect(opts_.dsn);
    return scalar(conn_.get(), q);
  }
  void stop_postgres() {
    conn_.reset();
    cluster("stop");
    ASSERT_TRUE(test::eventually([&] { return !store_->available(); }, 5s));
  }

  static inline std::string dsn_;
  Options opts_;
  test::Conn conn_;
  test::Completions done_;
  std::unique_ptr<Store> store_;
};

TEST_F(OutageTest, WritesWaitForPostgresAndNothingPromisedIsLost) {
  opts_.max_pending = 100;
  store_ = Store::open(opts_, kSqlDir);
  ASSERT_TRUE(store_->available());
  for (int i = 0; i < 10; ++i) store_->write_session(session("before" + std::to_string(i)));
  ASSERT_TRUE(test::eventually([&] { return store_->stats().rows_written == 10; }));
  bool loaded = false;
  store_->load_device("OUT-before0", done_.executor(),
                      [&](std::shared_ptr<const Device> d, bool ok) { loaded = d && ok; });
  ASSERT_TRUE(done_.run_until([&] { return loaded; }));

  stop_postgres();

  // Durable work: a session with a tag and a caller waiting, a task, a
  // transfer result, a transfer sent.
  std::optional<bool> session_ok, transfer_ok;
  std::optional<int64_t> task_id;
  store_->write_session(session("durable", true), done_.executor(),
                        [&](bool k) { session_ok = k; });
  store_->add_task(Task{0, "OUT-durable", "Reboot", "{}", {}, {}, ""}, done_.executor(),
                   [&](int64_t id) { task_id = id; });
  Transfer tc;
  tc.device_id = "OUT-durable";
  tc.command_key = "k1";
  store_->write_transfer(tc, done_.executor(), [&](bool k) { transfer_ok = k; });
  Transfer sent = tc;
  sent.command_key = "k2";
  store_->record_transfer_sent(sent);
  // Then more "last seen" updates than the queue keeps: the oldest go.
  for (int i = 0; i < 300; ++i) store_->write_session(session("p" + std::to_string(i)));

  // Nothing answered while PostgreSQL is away; a load of an unknown device fails.
  std::optional<bool> load_ok;
  store_->load_device("OUT-unknown", done_.executor(),
                      [&](std::shared_ptr<const Device>, bool ok) { load_ok = ok; });
  ASSERT_TRUE(done_.run_until([&] { return load_ok.has_value(); }));
  EXPECT_FALSE(*load_ok);
  done_.run_until([] { return false; }, 300ms);
  EXPECT_FALSE(session_ok || transfer_ok || task_id) << "nothing durable is answered before commit";
  EXPECT_FALSE(store_->available());
  ASSERT_TRUE(test::eventually([&] { return store_->stats().dropped == 202; }))
      << store_->stats().dropped;  // 302 queued, 100 kept
  // A cached device is still served.
  EXPECT_NE(store_->cached("OUT-before0"), nullptr);

  cluster("start");
  ASSERT_TRUE(done_.run_until([&] { return session_ok && transfer_ok && task_id; }, 15s));
  EXPECT_TRUE(*session_ok);
  EXPECT_TRUE(*transfer_ok);
  EXPECT_GT(*task_id, 0);
  // The writer committed; the reader reconnects on its own retry timer.
  EXPECT_TRUE(test::eventually([&] { return store_->available(); }));
  ASSERT_TRUE(test::eventually([&] { return store_->stats().pending == 0; }));

  EXPECT_EQ(sql("SELECT count(*) FROM devices WHERE id LIKE 'OUT-before%'"), "10");
  EXPECT_EQ(sql("SELECT tags::text FROM devices WHERE id = 'OUT-durable'"), "{kept}");
  EXPECT_EQ(sql("SELECT count(*) FROM tasks WHERE device_id = 'OUT-durable'"), "1");
  EXPECT_EQ(sql("SELECT string_agg(command_key || ':' || (completed_at IS NOT NULL)::text, ','"
                " ORDER BY command_key) FROM transfers"),
            "k1:true,k2:false");
  // The newest 98 "last seen" updates survived, the 202 oldest were dropped.
  EXPECT_EQ(sql("SELECT count(*) FROM devices WHERE id LIKE 'OUT-p%'"), "98");
  EXPECT_EQ(sql("SELECT min(substr(id, 6)::int) FROM devices WHERE id LIKE 'OUT-p%'"), "202");
  EXPECT_GE(store_->stats().reconnects, 2u);
}

TEST_F(OutageTest, DurableWritesGiveUpAfterTheirTimeout) {
  opts_.durable_timeout = 300ms;
  store_ = Store::open(opts_, kSqlDir);
  stop_postgres();
  std::optional<bool> transfer_ok, session_ok;
  std::optional<int64_t> task_id;
  const auto t0 = std::chrono::steady_clock::now();
  Transfer tc;
  tc.device_id = "OUT-t";
  store_->write_transfer(tc, done_.executor(), [&](bool k) { transfer_ok = k; });
  store_->add_task(Task{0, "OUT-t", "Reboot", "{}", {}, {}, ""}, done_.executor(),
                   [&](int64_t id) { task_id = id; });
  store_->write_session(session("t", true), done_.executor(), [&](bool k) { session_ok = k; });
  ASSERT_TRUE(done_.run_until([&] { return transfer_ok && task_id && session_ok; }, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
  EXPECT_FALSE(*transfer_ok);
  EXPECT_EQ(*task_id, 0);
  EXPECT_FALSE(*session_ok);

  // Back: the withdrawn transfer and task are not written (their callers
  // retry), the session result still is.
  cluster("start");
  ASSERT_TRUE(
      test::eventually([&] { return store_->available() && store_->stats().pending == 0; }));
  EXPECT_EQ(sql("SELECT count(*) FROM transfers"), "0");
  EXPECT_EQ(sql("SELECT count(*) FROM tasks"), "0");
  ASSERT_TRUE(test::eventually([&] { return sql("SELECT count(*) FROM devices") == "1"; }));
  EXPECT_EQ(sql("SELECT tags::text FROM devices"), "{kept}");
}

TEST_F(OutageTest, CloseWithoutPostgresIsBoundedAndSaysFalse) {
  opts_.close_timeout = 500ms;
  store_ = Store::open(opts_, kSqlDir);
  stop_postgres();
  std::optional<bool> ok;
  store_->write_session(session("c", true), done_.executor(), [&](bool k) { ok = k; });
  const auto t0 = std::chrono::steady_clock::now();
  store_->close();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, 3s);
  ASSERT_TRUE(done_.run_until([&] { return ok.has_value(); }));
  EXPECT_FALSE(*ok);
}

TEST_F(OutageTest, StartsWhenPostgresIsUpOnly) {
  cluster("stop");
  try {
    Store::open(opts_, kSqlDir);
    FAIL() << "opened without PostgreSQL";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("cannot connect to PostgreSQL at host=", 0), 0u) << msg;
    EXPECT_NE(msg.find("; is it running? check [store] dsn"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace luacs::store
