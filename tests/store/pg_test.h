// Shared by the store tests: the private cluster, one database per test
// executable, one schema per test, blocking SQL for checking, and an
// executor whose completions run on the test thread.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/store/store.h"
#include "support/pg.h"

namespace luacs::store::test {

using namespace std::chrono_literals;

// Runs a command, returns its stdout (trailing newline removed) and exit code.
inline std::pair<std::string, int> run_command(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {"", -1};
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return {out, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1};
}

inline std::string pg_private() {
  const char* s = std::getenv("LUACS_PG_PRIVATE");
  return s ? s : LUACS_SOURCE_DIR "/scripts/pg-private";
}

// The maintenance DSN: LUACS_TEST_DSN, else what `scripts/pg-private dsn`
// says (the support library's lookup, shared with the end-to-end tests).
inline std::string base_dsn() {
  std::string dsn = luacs::test::test_dsn();
  if (dsn.empty()) throw std::runtime_error("scripts/pg-private dsn failed");
  return dsn;
}

// Later keywords of a conninfo string win.
inline std::string with_dbname(const std::string& dsn, const std::string& db) {
  return dsn + " dbname=" + db;
}
inline std::string with_schema(const std::string& dsn, const std::string& schema) {
  return dsn + " options='-csearch_path=" + schema + "'";
}

struct ConnFree {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnFree>;

inline Conn connect(const std::string& dsn) {
  Conn c(PQconnectdb(dsn.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK)
    throw std::runtime_error("connect " + dsn + ": " + PQerrorMessage(c.get()));
  PQsetNoticeProcessor(
      c.get(), [](void*, const char*) {}, nullptr);
  return c;
}

using Rows = std::vector<std::vector<std::string>>;  // NULL reads as "<null>"

inline Rows query(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  const auto st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    std::string err = PQresultErrorMessage(r);
    PQclear(r);
    throw std::runtime_error(sql + ": " + err);
  }
  Rows rows;
  for (int i = 0; i < PQntuples(r); ++i) {
    rows.emplace_back();
    for (int j = 0; j < PQnfields(r); ++j)
      rows.back().push_back(PQgetisnull(r, i, j) ? "<null>" : PQgetvalue(r, i, j));
  }
  PQclear(r);
  return rows;
}

inline std::string scalar(PGconn* c, const std::string& sql) {
  Rows r = query(c, sql);
  if (r.empty() || r[0].empty()) throw std::runtime_error(sql + ": no rows");
  return r[0][0];
}

// One database per test executable: created on first use, dropped at exit.
class TestDatabase : public ::testing::Environment {
 public:
  explicit TestDatabase(std::string name) : name_(std::move(name)) {}
  void SetUp() override {
    db_ = "luacs_test_" + name_ + "_" + std::to_string(getpid());
    maint_ = base_dsn();
    Conn c = connect(maint_);
    query(c.get(), "DROP DATABASE IF EXISTS " + db_);
    query(c.get(), "CREATE DATABASE " + db_);
  }
  // FORCE cannot end a backend of another role (an autovacuum worker
  // caught in the database at that moment): try again shortly, and a
  // database left behind on the test cluster fails no test.
  void TearDown() override {
    if (db_.empty()) return;
    Conn c = connect(maint_);
    for (int tries = 0; tries < 20; ++tries) {
      try {
        query(c.get(), "DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
        return;
      } catch (const std::exception& e) {
        if (tries == 19)
          std::fprintf(stderr, "warning: %s left behind: %s\n", db_.c_str(), e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  std::string dsn() const { return with_dbname(maint_, db_); }
  const std::string& maintenance_dsn() const { return maint_; }

 private:
  std::string name_, db_, maint_;
};

// A fresh schema in the test database, named after the running test, so
// tests of one executable do not see each other's rows.
inline std::string fresh_schema(const TestDatabase& db) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("t_") + info->test_suite_name() + "_" + info->name();
  for (char& ch : name) ch = std::isalnum(static_cast<unsigned char>(ch)) ? std::tolower(ch) : '_';
  if (name.size() > 60) name.resize(60);
  Conn c = connect(db.dsn());
  query(c.get(), "DROP SCHEMA IF EXISTS " + name + " CASCADE");
  query(c.get(), "CREATE SCHEMA " + name);
  return name;
}

// Completions land here; the test thread runs them in run_until().
class Completions {
 public:
  Executor executor() {
    return [this](std::function<void()> f) {
      {
        std::lock_guard lock(mu_);
        q_.push_back(std::move(f));
      }
      cv_.notify_all();
    };
  }
  // Runs completions until pred() holds or the time is up.
  bool run_until(const std::function<bool()>& pred,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      std::deque<std::function<void()>> batch;
      {
        std::unique_lock lock(mu_);
        if (q_.empty()) {
          if (pred()) return true;
          if (cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + 20ms)) ==
                  std::cv_status::timeout &&
              std::chrono::steady_clock::now() >= deadline)
            return pred();
        }
        batch.swap(q_);
      }
      for (auto& f : batch) f();
      if (pred()) return true;
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
};

// Polls `pred` (no completions involved).
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// A test of core/store: its own fresh schema of `db`, a blocking connection
// to it (sql()), and a Store opened on it by open().
class StoreFixture : public ::testing::Test {
 protected:
  explicit StoreFixture(const TestDatabase& db) : db_(db) {}
  void SetUp() override {
    schema_ = fresh_schema(db_);
    opts_.dsn = with_schema(db_.dsn(), schema_);
    opts_.flush_interval = std::chrono::milliseconds(5);
    conn_ = connect(opts_.dsn);
  }
  void TearDown() override {
    if (store_) store_->close();
  }
  Store& open() {
    store_ = Store::open(opts_, LUACS_SOURCE_DIR "/sql");
    EXPECT_TRUE(store_->available());
    return *store_;
  }
  std::string sql(const std::string& q) { return scalar(conn_.get(), q); }

  const TestDatabase& db_;
  std::string schema_;
  Options opts_;
  Conn conn_;
  Completions done_;  // before store_: outlives it
  std::unique_ptr<Store> store_;
};

}  // namespace luacs::store::test
