// The asynchronous libpq connection on a libevent loop (real PostgreSQL).
#include "core/store/pg_connection.h"

#include <event2/event.h>
#include <gtest/gtest.h>

#include "tests/store/pg_test.h"

namespace luacs::store {
namespace {

using namespace std::chrono_literals;

auto* const g_db = static_cast<test::TestDatabase*>(
    ::testing::AddGlobalTestEnvironment(new test::TestDatabase("connection")));

struct BaseFree {
  void operator()(event_base* b) const { event_base_free(b); }
};

class PgConnectionTest : public ::testing::Test {
 protected:
  PgConnection::Options options(std::string dsn = "") {
    PgConnection::Options o;
    o.dsn = dsn.empty() ? g_db->dsn() : dsn;
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    o.connect_timeout = 2000ms;
    return o;
  }
  // Runs the loop until pred() or the timeout.
  bool loop_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      timeval tv{0, 10'000};
      event_base_loopexit(base_.get(), &tv);
      event_base_loop(base_.get(), EVLOOP_ONCE);
    }
    return true;
  }
  PgReply run(PgConnection& c, std::string sql, PgConnection::Params params = {}) {
    std::optional<PgReply> got;
    c.query(std::move(sql), std::move(params), [&](PgReply r) { got = std::move(r); });
    EXPECT_TRUE(loop_until([&] { return got.has_value(); }));
    return got ? std::move(*got) : PgReply::failure("no reply", false);
  }

  std::unique_ptr<event_base, BaseFree> base_{event_base_new()};
};

TEST_F(PgConnectionTest, ConnectsWithoutBlockingAndRunsQueriesInOrder) {
  PgConnection c(base_.get(), options());
  const auto t0 = std::chrono::steady_clock::now();
  c.start();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 50ms) << "start() must not wait for the server";
  EXPECT_FALSE(c.available());
  ASSERT_TRUE(loop_until([&] { return c.available(); }));

  PgReply r = run(c, "SELECT $1::int + 1, $2::text IS NULL", {"41", std::nullopt});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.get(0, 0), "42");
  EXPECT_EQ(r.get(0, 1), "t");

  // Many queued at once: one at a time on the wire, answered in order.
  std::vector<int> order;
  for (int i = 0; i < 50; ++i) {
    c.query("SELECT " + std::to_string(i), [&order, i](PgReply r) {
      EXPECT_TRUE(r.ok());
      EXPECT_EQ(r.get(0, 0), std::to_string(i));
      order.push_back(i);
    });
  }
  EXPECT_EQ(c.queued(), 50u);
  ASSERT_TRUE(loop_until([&] { return order.size() == 50; }));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);

  // Several statements without parameters: the last result.
  r = run(c, "SELECT 1; SELECT 2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.get(0, 0), "2");

  // A big parameter (several socket buffers) goes out through PQflush.
  const std::string big(4 << 20, 'x');
  r = run(c, "SELECT length($1)", {big});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.get(0, 0), std::to_string(big.size()));
}

TEST_F(PgConnectionTest, SqlErrorsLeaveTheConnectionUsable) {
  PgConnection c(base_.get(), options());
  c.start();
  ASSERT_TRUE(loop_until([&] { return c.available(); }));
  PgReply r = run(c, "SELEC 1");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.connection_lost());
  EXPECT_EQ(r.sqlstate(), "42601");
  EXPECT_NE(r.error().find("syntax error"), std::string::npos) << r.error();
  EXPECT_EQ(r.error().find('\n'), std::string::npos);

  r = run(c, "SELECT 1/0");
  EXPECT_EQ(r.sqlstate(), "22012");
  r = run(c, "SELECT 'still fine'");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.get(0, 0), "still fine");
  EXPECT_TRUE(c.available());
  EXPECT_EQ(c.reconnects(), 0u);
}

TEST_F(PgConnectionTest, ReconnectsAfterItsBackendIsTerminated) {
  PgConnection c(base_.get(), options());
  std::vector<bool> states;
  c.on_state = [&](bool up) { states.push_back(up); };
  c.start();
  ASSERT_TRUE(loop_until([&] { return c.available(); }));
  const int pid = c.backend_pid();
  ASSERT_GT(pid, 0);

  // A query in flight when the backend dies gets an error, and so does
  // one queued behind it.
  std::optional<PgReply> slow, queued;
  c.query("SELECT pg_sleep(30)", [&](PgReply r) { slow = std::move(r); });
  c.query("SELECT 1", [&](PgReply r) { queued = std::move(r); });
  loop_until([] { return false; }, 50ms);
  test::Conn admin = test::connect(g_db->dsn());
  EXPECT_EQ(test::scalar(admin.get(), "SELECT pg_terminate_backend(" + std::to_string(pid) + ")"),
            "t");

  ASSERT_TRUE(loop_until([&] { return slow && queued; }));
  EXPECT_FALSE(slow->ok());
  EXPECT_TRUE(slow->connection_lost());
  EXPECT_TRUE(queued->connection_lost());

  ASSERT_TRUE(loop_until([&] { return c.available(); }));
  EXPECT_EQ(states, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(c.reconnects(), 1u);
  EXPECT_NE(c.backend_pid(), pid);
  PgReply r = run(c, "SELECT 7");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.get(0, 0), "7");

  // Idle when killed: noticed from the socket alone.
  const int pid2 = c.backend_pid();
  test::scalar(admin.get(), "SELECT pg_terminate_backend(" + std::to_string(pid2) + ")");
  ASSERT_TRUE(loop_until([&] { return states.size() == 5; }));
  EXPECT_EQ(states, (std::vector<bool>{true, false, true, false, true}));
  EXPECT_EQ(c.reconnects(), 2u);
}

TEST_F(PgConnectionTest, UnreachableServerFailsQueriesAndKeepsRetrying) {
  PgConnection c(base_.get(), options("host=/nonexistent/luacs dbname=x"));
  c.start();
  std::optional<PgReply> r;
  c.query("SELECT 1", [&](PgReply x) { r = std::move(x); });
  EXPECT_FALSE(r) << "never answered from inside query()";
  ASSERT_TRUE(loop_until([&] { return r.has_value(); }));
  EXPECT_TRUE(r->connection_lost());
  EXPECT_NE(r->error().find("not connected"), std::string::npos) << r->error();
  loop_until([] { return false; }, 300ms);
  EXPECT_FALSE(c.available());
  EXPECT_NE(c.last_error().find("/nonexistent/luacs"), std::string::npos) << c.last_error();
}

TEST_F(PgConnectionTest, ListensAfterEveryConnect) {
  auto o = options();
  o.on_connect_sql = "LISTEN luacs_test";
  PgConnection c(base_.get(), o);
  std::vector<std::string> got;
  c.on_notify = [&](const std::string& channel, const std::string& payload, int) {
    got.push_back(channel + ":" + payload);
  };
  c.start();
  ASSERT_TRUE(loop_until([&] { return c.available(); }));
  test::Conn admin = test::connect(g_db->dsn());
  test::query(admin.get(), "NOTIFY luacs_test, 'one'");
  ASSERT_TRUE(loop_until([&] { return got.size() == 1; }));
  EXPECT_EQ(got[0], "luacs_test:one");

  test::scalar(admin.get(), "SELECT pg_terminate_backend(" + std::to_string(c.backend_pid()) + ")");
  ASSERT_TRUE(loop_until([&] { return !c.available(); }));
  ASSERT_TRUE(loop_until([&] { return c.available(); }));
  test::query(admin.get(), "NOTIFY luacs_test, 'two'");
  ASSERT_TRUE(loop_until([&] { return got.size() == 2; }));
  EXPECT_EQ(got[1], "luacs_test:two");
}

TEST_F(PgConnectionTest, CloseFailsWhatIsPending) {
  PgConnection c(base_.get(), options());
  c.start();
  ASSERT_TRUE(loop_until([&] { return c.available(); }));
  int failed = 0;
  c.query("SELECT pg_sleep(5)", [&](PgReply r) { failed += !r.ok(); });
  c.query("SELECT 1", [&](PgReply r) { failed += !r.ok(); });
  c.close();
  EXPECT_EQ(failed, 2);
  EXPECT_FALSE(c.available());
}

}  // namespace
}  // namespace luacs::store
