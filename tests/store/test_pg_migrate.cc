// Schema migrations and the start-up path of Store::open (real PostgreSQL).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "core/store/migrate.h"
#include "tests/store/pg_test.h"

namespace luacs::store {
namespace {

using test::Conn;
using test::query;
using test::scalar;

auto* const g_db = static_cast<test::TestDatabase*>(
    ::testing::AddGlobalTestEnvironment(new test::TestDatabase("migrate")));

const std::string kSqlDir = LUACS_SOURCE_DIR "/sql";

class MigrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    schema_ = test::fresh_schema(*g_db);
    dsn_ = test::with_schema(g_db->dsn(), schema_);
    conn_ = test::connect(dsn_);
  }
  std::string temp_dir(const std::vector<std::pair<std::string, std::string>>& files) {
    auto dir = std::filesystem::path(::testing::TempDir()) /
               ("luacs_sql_" + schema_ + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (const auto& [name, text] : files) std::ofstream(dir / name) << text;
    return dir.string();
  }
  bool table_exists(const std::string& t) {
    return scalar(conn_.get(), "SELECT count(*) FROM pg_tables WHERE schemaname = '" + schema_ +
                                   "' AND tablename = '" + t + "'") == "1";
  }

  std::string schema_, dsn_;
  Conn conn_;
};

TEST_F(MigrateTest, EmptyDatabaseGetsEverythingOnceAndReRunIsANoOp) {
  const MigrationReport first = migrate(conn_.get(), kSqlDir);
  EXPECT_EQ(first.from, 0);
  EXPECT_GE(first.to, 1);
  ASSERT_FALSE(first.applied.empty());
  EXPECT_EQ(first.applied.front(), "001_initial.sql");
  for (const char* t : {"devices", "tasks", "faults", "transfers", "files", "session_log"})
    EXPECT_TRUE(table_exists(t)) << t;
  EXPECT_EQ(scalar(conn_.get(), "SELECT name FROM schema_migrations WHERE version = 1"), "initial");
  EXPECT_EQ(scalar(conn_.get(),
                   "SELECT reloptions::text FROM pg_class WHERE relname = 'devices'"
                   " AND relnamespace = '" +
                       schema_ + "'::regnamespace"),
            "{fillfactor=80}");

  const MigrationReport again = migrate(conn_.get(), kSqlDir);
  EXPECT_TRUE(again.applied.empty());
  EXPECT_EQ(again.from, first.to);
  EXPECT_EQ(again.to, first.to);
  EXPECT_EQ(scalar(conn_.get(), "SELECT count(*) FROM schema_migrations"),
            std::to_string(first.applied.size()));
}

TEST_F(MigrateTest, NewerSchemaIsRefused) {
  const MigrationReport r = migrate(conn_.get(), kSqlDir);
  query(conn_.get(), "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')");
  try {
    migrate(conn_.get(), kSqlDir);
    FAIL() << "a schema newer than the binary was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "database schema is at version 999 but this luacs knows up to " +
                  std::to_string(r.to) + "; upgrade luacs");
  }
  // Store::open refuses the same way (and starts nothing).
  Options o;
  o.dsn = dsn_;
  EXPECT_THROW(
      {
        try {
          Store::open(o, kSqlDir);
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("upgrade luacs"), std::string::npos) << e.what();
          throw;
        }
      },
      std::runtime_error);
}

TEST_F(MigrateTest, BadSqlIsNamedWithItsLineAndNothingOfItIsApplied) {
  const std::string dir = temp_dir({
      {"001_good.sql", "CREATE TABLE good_t (a int);\n"},
      {"002_bad.sql", "-- a comment\nCREATE TABLE bad_t (a int);\nCREATE TABL oops (b int);\n"},
      {"README.md", "not a migration"},
  });
  try {
    migrate(conn_.get(), dir);
    FAIL() << "bad SQL was applied";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(dir + "/002_bad.sql:3: syntax error at or near \"TABL\"", 0), 0u) << msg;
    EXPECT_NE(msg.find("nothing from it was applied"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_TRUE(table_exists("good_t"));
  EXPECT_FALSE(table_exists("bad_t")) << "the statement before the error was rolled back";
  EXPECT_EQ(scalar(conn_.get(), "SELECT string_agg(version::text, ',') FROM schema_migrations"),
            "1");
  // The connection is usable afterwards (no transaction left open).
  EXPECT_EQ(PQtransactionStatus(conn_.get()), PQTRANS_IDLE);
}

TEST_F(MigrateTest, FilesRunInNumericOrderAndMisnamedFilesAreRefused) {
  const std::string dir = temp_dir({
      {"10_second.sql", "INSERT INTO order_t VALUES (10);\n"},
      {"9_first.sql", "CREATE TABLE order_t (v int); INSERT INTO order_t VALUES (9);\n"},
  });
  const MigrationReport r = migrate(conn_.get(), dir);
  EXPECT_EQ(r.applied, (std::vector<std::string>{"9_first.sql", "10_second.sql"}));
  EXPECT_EQ(r.to, 10);
  EXPECT_EQ(scalar(conn_.get(), "SELECT string_agg(v::text, ',' ORDER BY v) FROM order_t"), "9,10");

  const std::string bad = temp_dir({{"initial.sql", "SELECT 1;"}});
  EXPECT_THROW(migrate(conn_.get(), bad), std::runtime_error);
}

TEST_F(MigrateTest, TwoNodesStartingTogetherApplyOnce) {
  // The advisory lock serialises them: one applies, the other finds it done.
  auto run = [&] {
    Conn c = test::connect(dsn_);
    return migrate(c.get(), kSqlDir).applied.size();
  };
  auto a = std::async(std::launch::async, run);
  auto b = std::async(std::launch::async, run);
  const size_t na = a.get(), nb = b.get();
  EXPECT_EQ(na + nb, std::max(na, nb));
  EXPECT_GE(std::max(na, nb), 1u);
  EXPECT_EQ(scalar(conn_.get(), "SELECT count(*) FROM schema_migrations"),
            std::to_string(std::max(na, nb)));
}

TEST(StoreOpen, UnreachablePostgresThrowsOneLineWithAHint) {
  Options o;
  o.dsn = "host=/nonexistent/luacs dbname=luacs user=luacs";
  o.connect_timeout = std::chrono::milliseconds(2000);
  try {
    Store::open(o, kSqlDir);
    FAIL() << "opened a store without PostgreSQL";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(
        msg.rfind(
            "cannot connect to PostgreSQL at host=/nonexistent/luacs dbname=luacs user=luacs: ", 0),
        0u)
        << msg;
    EXPECT_NE(msg.find("; is it running? check [store] dsn"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(StoreOpen, PasswordsNeverReachTheMessage) {
  EXPECT_EQ(describe_dsn("host=db.example port=5433 dbname=acs user=u password=secret"),
            "host=db.example port=5433 dbname=acs user=u");
  EXPECT_EQ(describe_dsn("postgresql://u:secret@db.example/acs"),
            "host=db.example dbname=acs user=u");
}

}  // namespace
}  // namespace luacs::store
