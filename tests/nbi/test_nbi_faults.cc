// GET /faults, DELETE /faults/{device}/{source} and GET /sessions against
// the real binary, real PostgreSQL and a simulated CPE.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"

using namespace luacs;
using namespace std::chrono_literals;
using nlohmann::json;
using test::ApiServer;

namespace {

const std::string kDevice = "E48D8C-hAP%20lite-";

void add_device(ApiServer& api, const std::string& id, const std::string& tags = "") {
  api.pg().query(
      "INSERT INTO devices (id, first_seen, last_inform, tags)"
      " VALUES ($1, now(), now(), string_to_array($2, ','))",
      {id, tags});
}

void add_fault(ApiServer& api, const std::string& device, const std::string& source,
               const std::string& code = "9002") {
  api.pg().query(
      "INSERT INTO faults (device_id, source, code, message, detail, retries)"
      " VALUES ($1, $2, $3::int8, 'Internal error', '{\"k\": 1}', 2)",
      {device, source, code});
}

void add_session(ApiServer& api, const std::string& device, const std::string& at,
                 const std::string& result) {
  api.pg().query(
      "INSERT INTO session_log (device_id, at, summary)"
      " VALUES ($1, $2::timestamptz, json_build_object('result', $3::text))",
      {device, at, result});
}

std::string policy_dir(const std::string& lua) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("luacs-nbi-faults-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "10-faulty.lua") << lua;
  return dir.string();
}

bool session(uint16_t port, const std::string& serial) {
  test::CpeClient c(port);
  if (c.post(test::inform_xml(serial, "E48D8C", "hAP lite", {{"2 PERIODIC", ""}})).status != 200)
    return false;
  return c.post("").status == 204;
}

}  // namespace

TEST(FaultApi, ListFilterPageAndClear) {
  ApiServer api("nbifaults");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string read = api.token("noc", "read");
  const std::string op = api.token("ops", "operate");
  const std::string a = kDevice + "F1", b = kDevice + "F2";
  add_device(api, a);
  add_device(api, b);
  add_fault(api, a, "cwmp.9002");
  add_fault(api, a, "policy", "0");
  add_fault(api, b, "task", "9005");

  auto all = api.call(read, "GET", "/faults");
  ASSERT_EQ(all.status, 200) << all.body;
  const json faults = all.json().at("faults");
  ASSERT_EQ(faults.size(), 3u);
  EXPECT_EQ(faults[0].value("device", ""), a);
  EXPECT_EQ(faults[0].value("source", ""), "cwmp.9002");
  EXPECT_EQ(faults[0].value("code", 0), 9002);
  EXPECT_EQ(faults[0].value("message", ""), "Internal error");
  EXPECT_EQ(faults[0].at("detail"), json({{"k", 1}}));
  EXPECT_EQ(faults[0].value("retries", 0), 2);
  EXPECT_EQ(faults[0].value("first_seen", "").back(), 'Z');
  EXPECT_TRUE(all.json().at("next").is_null());

  EXPECT_EQ(
      api.call(read, "GET", "/faults?device=" + test::url_escape(a)).json().at("faults").size(),
      2u);
  auto task = api.call(read, "GET", "/faults?source=task").json().at("faults");
  ASSERT_EQ(task.size(), 1u);
  EXPECT_EQ(task[0].value("device", ""), b);

  // Paged on (device, source).
  auto p1 = api.call(read, "GET", "/faults?limit=2");
  ASSERT_EQ(p1.json().at("faults").size(), 2u);
  const std::string next = p1.json().at("next").get<std::string>();
  auto p2 = api.call(read, "GET", "/faults?limit=2&after=" + test::url_escape(next));
  ASSERT_EQ(p2.status, 200) << p2.body;
  ASSERT_EQ(p2.json().at("faults").size(), 1u);
  EXPECT_EQ(p2.json().at("faults")[0].value("source", ""), "task");

  // Clearing: operate, 404 when there is none.
  EXPECT_EQ(api.call(read, "DELETE", "/faults/" + test::url_escape(a) + "/policy").status, 403);
  auto del = api.call(op, "DELETE", "/faults/" + test::url_escape(a) + "/policy");
  EXPECT_EQ(del.status, 200) << del.body;
  EXPECT_TRUE(del.json().value("deleted", false));
  EXPECT_EQ(api.call(op, "DELETE", "/faults/" + test::url_escape(a) + "/policy").status, 404);
  EXPECT_EQ(
      api.call(op, "DELETE", "/faults/" + test::url_escape(kDevice + "none") + "/task").status,
      404);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM faults"), "2");
  // A source with a '/' is one segment when escaped.
  add_fault(api, a, "x/y");
  EXPECT_EQ(api.call(op, "DELETE", "/faults/" + test::url_escape(a) + "/" + test::url_escape("x/y"))
                .status,
            200);
}

TEST(FaultApi, FiltersAreValuesNotSql) {
  ApiServer api("nbifaultsql");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("ops", "operate");
  add_device(api, kDevice + "I1");
  add_fault(api, kDevice + "I1", "task");
  add_session(api, kDevice + "I1", "2026-12-01T10:00:00Z", "ok");
  for (const std::string evil : {"' OR 1=1 --", "'); DROP TABLE faults; --"}) {
    EXPECT_EQ(
        api.call(op, "GET", "/faults?device=" + test::url_escape(evil)).json().at("faults").size(),
        0u);
    EXPECT_EQ(
        api.call(op, "GET", "/faults?source=" + test::url_escape(evil)).json().at("faults").size(),
        0u);
    EXPECT_EQ(api.call(op, "GET", "/faults?after=" + test::url_escape(evil)).status, 400);
    EXPECT_EQ(api.call(op, "GET", "/faults?limit=" + test::url_escape(evil)).status, 400);
    EXPECT_EQ(
        api.call(op, "DELETE", "/faults/" + test::url_escape(evil) + "/" + test::url_escape(evil))
            .status,
        404);
    EXPECT_EQ(api.call(op, "GET", "/sessions?device=" + test::url_escape(evil))
                  .json()
                  .at("sessions")
                  .size(),
              0u);
    EXPECT_EQ(api.call(op, "GET", "/sessions?since=" + test::url_escape(evil)).status, 400);
    EXPECT_EQ(api.call(op, "GET", "/sessions?limit=" + test::url_escape(evil)).status, 400);
  }
  EXPECT_EQ(api.call(op, "GET", "/faults?code=9005").status, 400);
  EXPECT_EQ(api.call(op, "GET", "/sessions?until=x").status, 400);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM faults"), "1");
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM session_log"), "1");
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM devices"), "1");
}

TEST(SessionApi, NewestFirstSinceAndLimit) {
  ApiServer api("nbisessions");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string read = api.token("noc", "read");
  const std::string a = kDevice + "L1", b = kDevice + "L2";
  add_device(api, a);
  add_device(api, b);
  add_session(api, a, "2026-12-01T10:00:00Z", "first");
  add_session(api, a, "2026-12-02T10:00:00Z", "second");
  add_session(api, b, "2026-12-03T10:00:00Z", "third");

  auto all = api.call(read, "GET", "/sessions");
  ASSERT_EQ(all.status, 200) << all.body;
  const json s = all.json().at("sessions");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].at("summary").value("result", ""), "third");
  EXPECT_EQ(s[0].value("device", ""), b);
  EXPECT_EQ(s[0].value("at", ""), "2026-12-03T10:00:00.000Z");
  EXPECT_EQ(s[2].at("summary").value("result", ""), "first");

  auto dev = api.call(read, "GET", "/sessions?device=" + test::url_escape(a)).json().at("sessions");
  ASSERT_EQ(dev.size(), 2u);
  EXPECT_EQ(dev[0].at("summary").value("result", ""), "second");
  auto since =
      api.call(read, "GET", "/sessions?since=" + test::url_escape("2026-12-02T11:00:00+01:00"));
  ASSERT_EQ(since.status, 200) << since.body;
  EXPECT_EQ(since.json().at("sessions").size(), 2u);  // 10:00Z is included
  auto one = api.call(read, "GET", "/sessions?limit=1").json().at("sessions");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].at("summary").value("result", ""), "third");
  EXPECT_EQ(api.call(read, "GET", "/sessions?since=2026-12-02").status, 400);
  EXPECT_EQ(api.call(read, "GET", "/sessions?limit=10001").status, 400);
  EXPECT_EQ(api.call("", "GET", "/sessions").status, 401);
}

TEST(FaultApi, ATagScopedTokenSeesOnlyItsDevices) {
  ApiServer api("nbifaultscope");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string acme = api.token("acme", "operate", "acme");
  const std::string mine = kDevice + "S1", theirs = kDevice + "S2";
  add_device(api, mine, "acme");
  add_device(api, theirs, "other");
  add_fault(api, mine, "task");
  add_fault(api, theirs, "task");
  add_session(api, mine, "2026-12-01T10:00:00Z", "mine");
  add_session(api, theirs, "2026-12-01T11:00:00Z", "theirs");

  auto faults = api.call(acme, "GET", "/faults").json().at("faults");
  ASSERT_EQ(faults.size(), 1u);
  EXPECT_EQ(faults[0].value("device", ""), mine);
  EXPECT_EQ(api.call(acme, "GET", "/faults?device=" + test::url_escape(theirs))
                .json()
                .at("faults")
                .size(),
            0u);
  auto sessions = api.call(acme, "GET", "/sessions").json().at("sessions");
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].at("summary").value("result", ""), "mine");
  EXPECT_EQ(api.call(acme, "DELETE", "/faults/" + test::url_escape(theirs) + "/task").status, 403);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM faults"), "2");
  EXPECT_EQ(api.call(acme, "DELETE", "/faults/" + test::url_escape(mine) + "/task").status, 200);
  EXPECT_EQ(api.call("", "GET", "/faults").status, 401);
  EXPECT_EQ(api.call("", "DELETE", "/faults/" + test::url_escape(mine) + "/task").status, 401);
}

// A policy hook that fails records a fault; cleared, the hook runs again at
// the next session and the failure is recorded afresh (retries from 0).
TEST(FaultApi, AClearedPolicyFaultIsRetriedAtTheNextSession) {
  ApiServer api("nbifaultpol",
                "[policy]\ndir = " +
                    policy_dir("function on_inform(dev) error('no config for ' .. dev.id) end\n") +
                    "\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("ops", "operate");
  const std::string dev = kDevice + "P1";
  const std::string path = "/faults?device=" + test::url_escape(dev) + "&source=policy";
  ASSERT_TRUE(session(api.cwmp_port(), "P1"));
  ASSERT_TRUE(session(api.cwmp_port(), "P1"));
  auto before = api.call(op, "GET", path).json().at("faults");
  ASSERT_EQ(before.size(), 1u) << api.luacs().log();
  EXPECT_EQ(before[0].value("retries", -1), 1);
  EXPECT_NE(before[0].value("message", "").find("no config for"), std::string::npos);

  ASSERT_EQ(api.call(op, "DELETE", "/faults/" + test::url_escape(dev) + "/policy").status, 200);
  EXPECT_EQ(api.call(op, "GET", path).json().at("faults").size(), 0u);
  ASSERT_TRUE(session(api.cwmp_port(), "P1"));
  auto after = api.call(op, "GET", path).json().at("faults");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].value("retries", -1), 0);
}
