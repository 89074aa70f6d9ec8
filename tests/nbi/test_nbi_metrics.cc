// GET /metrics: the Prometheus text of the running server, open without a
// token only to [metrics] allow (default loopback), and values that move
// with what the server does. Real binary, real PostgreSQL, real sockets.
#include <gtest/gtest.h>

#include <thread>

#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::ApiServer;
using test::CpeClient;
using test::inform_xml;

namespace {

// The value of one series line ("name{labels}" exactly as rendered), or -1.
double value(const std::string& text, const std::string& series) {
  const std::string key = "\n" + series + " ";
  const auto at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + key.size()));
}

std::string scrape(ApiServer& api) {
  const auto r = api.call("", "GET", "/metrics");
  EXPECT_EQ(r.status, 200) << r.body;
  return r.body;
}

}  // namespace

TEST(ApiMetrics, LoopbackScrapesWithoutATokenAndTheSeriesMove) {
  ApiServer api("nbimetrics");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const auto first = api.call("", "GET", "/metrics");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u)
      << first.header("Content-Type");
  const std::string& t0 = first.body;
  for (const char* name : {"luacs_sessions_total",           "luacs_session_duration_seconds",
                           "luacs_inform_latency_seconds",   "luacs_refusals_total",
                           "luacs_sessions_in_flight",       "luacs_connections_open",
                           "luacs_device_cache_hits_total",  "luacs_device_cache_misses_total",
                           "luacs_device_cache_bytes",       "luacs_store_backlog",
                           "luacs_store_batch_rows",         "luacs_store_commit_seconds",
                           "luacs_store_reconnects_total",   "luacs_policy_generation",
                           "luacs_policy_hook_errors_total", "luacs_policy_hook_seconds_total",
                           "luacs_lua_memory_bytes",         "luacs_file_bytes_served_total",
                           "luacs_api_requests_total",       "luacs_api_event_subscribers"})
    EXPECT_NE(t0.find(std::string("# TYPE ") + name), std::string::npos) << name;
  const std::string completed = "luacs_sessions_total{outcome=\"completed\"}";
  EXPECT_EQ(value(t0, completed), 0) << t0;

  EXPECT_EQ(value(t0, "luacs_refusals_total{reason=\"device_busy\"}"), 0) << t0;
  // The C heap: a running server has its buffers, Lua states and caches in
  // use (about 1 MB before any session). Under AddressSanitizer, whose
  // allocator glibc's mallinfo2 does not see, both read 0.
  EXPECT_GE(value(t0, "luacs_heap_bytes{state=\"free\"}"), 0) << t0;
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_GE(value(t0, "luacs_heap_bytes{state=\"in_use\"}"), 0) << t0;
#else
  EXPECT_GT(value(t0, "luacs_heap_bytes{state=\"in_use\"}"), 256 << 10) << t0;
#endif

  // A session with a task the CPE faults: the sessions counter, the
  // latency histograms, the RPC by method and fault code, the store.
  api.pg().query(
      "INSERT INTO tasks (device_id, name, args) VALUES ($1, 'GetParameterValues', "
      "'{\"names\": [\"Device.Nope.\"]}')",
      {"E48D8C-hAP%20lite-M1"});
  {
    CpeClient c(api.cwmp_port());
    ASSERT_EQ(c.post(inform_xml("M1")).status, 200);
    auto r = c.post("");
    ASSERT_EQ(r.status, 200);
    soap::Fault f;
    f.code = 9005;
    f.string = "Invalid parameter name";
    ASSERT_EQ(c.post(test::message_xml(f, test::parse_ok(r.body).header.id.value_or(""))).status,
              204);
  }
  std::string t1;
  for (int i = 0; i < 50; ++i) {
    t1 = scrape(api);
    if (value(t1, "luacs_store_rows_written_total") >= 1) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(value(t1, completed), 1) << t1;
  EXPECT_EQ(value(t1, "luacs_session_duration_seconds_count"), 1) << t1;
  EXPECT_EQ(value(t1, "luacs_inform_latency_seconds_count"), 1) << t1;
  EXPECT_EQ(value(t1, "luacs_device_cache_misses_total"), 1) << t1;
  EXPECT_GE(value(t1, "luacs_store_commit_seconds_count"), 1) << t1;
  EXPECT_EQ(value(t1, "luacs_sessions_in_flight"), 0) << t1;
  EXPECT_EQ(value(t1,
                  "luacs_rpcs_total{fault_code=\"9005\",method=\"GetParameterValues\","
                  "outcome=\"fault\"}"),
            1)
      << t1;

  // A 503: a second session of a device that is in one now.
  CpeClient busy_holder(api.cwmp_port());
  ASSERT_EQ(busy_holder.post(inform_xml("M2")).status, 200);
  {
    CpeClient other(api.cwmp_port());
    EXPECT_EQ(other.post(inform_xml("M2")).status, 503);
  }
  const std::string t2 = scrape(api);
  EXPECT_EQ(value(t2, "luacs_refusals_total{reason=\"device_busy\"}"), 1) << t2;
  EXPECT_EQ(value(t2, "luacs_sessions_in_flight"), 1) << t2;
  // The API counts its own requests (a scrape is counted once answered).
  const std::string scrapes = "luacs_api_requests_total{route=\"/metrics\",status=\"200\"}";
  EXPECT_GE(value(t1, scrapes), 1) << t1;
  EXPECT_EQ(value(t2, scrapes), value(t1, scrapes) + 1) << t2;
}

TEST(ApiMetrics, OutsideTheAllowListATokenIsNeededAndAScopedOneIsRefused) {
  ApiServer api("nbimetricsallow", "[metrics]\nallow = 192.0.2.0/24\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  EXPECT_EQ(api.call("", "GET", "/metrics").status, 401);
  const std::string read = api.token("prom", "read");
  const auto ok = api.call(read, "GET", "/metrics");
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("luacs_sessions_total"), std::string::npos);
  const std::string scoped = api.token("reseller", "read", "cust-a");
  EXPECT_EQ(api.call(scoped, "GET", "/metrics").status, 403);
}
