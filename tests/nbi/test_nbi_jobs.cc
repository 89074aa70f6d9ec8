// Bulk jobs: POST /jobs queues a task for every device a filter selects,
// GET /jobs/{id} follows it, DELETE /jobs/{id} cancels it. Real binary,
// real PostgreSQL.
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/fake_cr_cpe.h"

using namespace luacs;
using namespace std::chrono_literals;
using nlohmann::json;
using test::ApiServer;

namespace {

// n devices "D-000001".. with tag "even" on even numbers and "all" on all.
void make_devices(ApiServer& api, int n) {
  api.pg().query(
      "INSERT INTO devices (id, oui, product_class, serial_number, first_seen, last_inform, tags)"
      " SELECT 'D-' || lpad(i::text, 6, '0'), 'D', 'Box', i::text, now(), now(),"
      "  CASE WHEN i % 2 = 0 THEN '{all,even}'::text[] ELSE '{all}'::text[] END"
      " FROM generate_series(1, $1::int) i",
      {std::to_string(n)});
}

// The job once it is no longer queuing (or the last answer after 30 s).
json wait_queued(ApiServer& api, const std::string& token, int64_t id) {
  json j;
  for (int i = 0; i < 300; ++i) {
    j = api.call(token, "GET", "/jobs/" + std::to_string(id)).json();
    if (j.value("state", "") != "queuing") break;
    std::this_thread::sleep_for(100ms);
  }
  return j;
}

// The job once its waking ended (or the last answer after 30 s).
json wait_woken(ApiServer& api, const std::string& token, int64_t id) {
  json j;
  for (int i = 0; i < 300; ++i) {
    j = api.call(token, "GET", "/jobs/" + std::to_string(id)).json();
    if (j["connection_request"].is_object() &&
        j["connection_request"].value("state", "") != "waking")
      break;
    std::this_thread::sleep_for(100ms);
  }
  return j;
}

// One CWMP session of device `serial`: answers every RPC the ACS sends and
// returns their names in order.
std::vector<std::string> cwmp_session(uint16_t port, const std::string& serial,
                                      const std::string& event, const std::string& cr_url) {
  test::CpeClient c(port);
  std::vector<std::string> rpcs;
  auto r = c.post(
      test::inform_xml(serial, "E48D8C", "hAP lite", {{event, ""}},
                       {{"Device.ManagementServer.ConnectionRequestURL", cr_url, "string"}}));
  EXPECT_EQ(r.status, 200) << r.body;
  r = c.post("");
  while (r.status == 200) {
    const soap::Envelope req = test::parse_ok(r.body);
    const std::string id = req.header.id.value_or("");
    if (std::get_if<soap::Reboot>(&req.body)) {
      rpcs.push_back("Reboot");
      r = c.post(test::message_xml(soap::RebootResponse{}, id));
    } else if (std::get_if<soap::SetParameterValues>(&req.body)) {
      rpcs.push_back("SetParameterValues");
      r = c.post(test::message_xml(soap::SetParameterValuesResponse{0}, id));
    } else {
      ADD_FAILURE() << "unexpected request " << r.body;
      break;
    }
  }
  EXPECT_EQ(r.status, 204);
  return rpcs;
}

}  // namespace

TEST(ApiJobs, AJobQueuesATaskForEveryMatchingDeviceAndReportsProgress) {
  ApiServer api("nbijobs");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  make_devices(api, 12'001);  // more than two batches
  const std::string op = api.token("op", "operate");

  const auto r = api.call(op, "POST", "/jobs",
                          R"({"filter": {"tag": "even"}, "task": {"name": "reboot"},
                              "expires": 3600})");
  ASSERT_EQ(r.status, 202) << r.body;
  const int64_t id = r.json().value("id", int64_t{0});
  ASSERT_GT(id, 0);
  EXPECT_EQ(r.header("Location"), "/jobs/" + std::to_string(id));

  auto j = wait_queued(api, op, id);
  EXPECT_EQ(j.value("state", ""), "queued") << j.dump();
  EXPECT_EQ(j.value("matched", 0), 6000);
  EXPECT_EQ(j.value("queued", 0), 6000);
  EXPECT_EQ(j.value("pending", 0), 6000);
  EXPECT_EQ(j.value("progress", -1.0), 0.0);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM tasks WHERE job_id = $1 AND name = 'Reboot'"
                           " AND expires > now() + interval '50 minutes'",
                           {std::to_string(id)}),
            "6000");
  // Only the even devices, each once.
  EXPECT_EQ(api.pg().value("SELECT count(DISTINCT device_id) FROM tasks t JOIN devices d"
                           " ON d.id = t.device_id WHERE job_id = $1 AND 'even' = ANY(d.tags)",
                           {std::to_string(id)}),
            "6000");

  // The fleet works through it.
  api.pg().query(
      "UPDATE tasks SET state = 'done' WHERE id IN (SELECT id FROM tasks"
      " WHERE job_id = $1 ORDER BY id LIMIT 1500)",
      {std::to_string(id)});
  api.pg().query(
      "UPDATE tasks SET state = 'fault' WHERE id IN (SELECT id FROM tasks"
      " WHERE job_id = $1 AND state = 'pending' ORDER BY id LIMIT 1500)",
      {std::to_string(id)});
  j = api.call(op, "GET", "/jobs/" + std::to_string(id)).json();
  EXPECT_EQ(j.value("done", 0), 1500);
  EXPECT_EQ(j.value("faulted", 0), 1500);
  EXPECT_EQ(j.value("pending", 0), 3000);
  EXPECT_DOUBLE_EQ(j.value("progress", 0.0), 0.5);
  const auto list = api.call(op, "GET", "/jobs").json();
  ASSERT_EQ(list["jobs"].size(), 1u);
  EXPECT_EQ(list["jobs"][0].value("id", int64_t{0}), id);

  // Cancelled: the pending tasks are withdrawn, the ended ones stay.
  const auto c = api.call(op, "DELETE", "/jobs/" + std::to_string(id));
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.json().value("withdrawn", 0), 3000);
  j = api.call(op, "GET", "/jobs/" + std::to_string(id)).json();
  EXPECT_EQ(j.value("state", ""), "cancelled");
  EXPECT_EQ(j.value("pending", -1), 0);
  EXPECT_EQ(j.value("done", 0), 1500);
  EXPECT_EQ(api.call(op, "DELETE", "/jobs/999999").status, 404);
  EXPECT_EQ(api.call(op, "GET", "/jobs/999999").status, 404);
  EXPECT_EQ(api.call(op, "GET", "/jobs/abc").status, 404);
}

TEST(ApiJobs, GenieAcsBodiesUniqueKeysAndParameterFilters) {
  ApiServer api("nbijobs2");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  make_devices(api, 10);
  api.pg().query(
      R"(UPDATE devices SET parameters = '{"Device.DeviceInfo.SoftwareVersion": ["7.1.3", "xsd:string", 0]}' WHERE id <= 'D-000003')");
  const std::string op = api.token("op", "operate");
  const std::string body = R"({"filter": {"param.Device.DeviceInfo.SoftwareVersion": "7.1*"},
    "task": {"name": "setParameterValues", "uniqueKey": "ssid",
             "parameterValues": [["Device.WiFi.SSID.1.SSID", "guest", "xsd:string"]]}})";
  const auto a = api.call(op, "POST", "/jobs", body);
  ASSERT_EQ(a.status, 202) << a.body;
  EXPECT_EQ(wait_queued(api, op, a.json()["id"]).value("queued", 0), 3);
  // The same unique key again replaces those tasks instead of adding some.
  const auto b = api.call(op, "POST", "/jobs", body);
  ASSERT_EQ(b.status, 202) << b.body;
  EXPECT_EQ(wait_queued(api, op, b.json()["id"]).value("queued", 0), 3);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM tasks WHERE state = 'pending'"), "3");
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM tasks WHERE job_id = $1", {b.json()["id"].dump()}),
            "3");
}

TEST(ApiJobs, BadJobsAreRefusedAndNothingIsQueued) {
  ApiServer api("nbijobs3");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  make_devices(api, 5);
  const std::string op = api.token("op", "operate");
  const std::string rd = api.token("rd", "read");
  auto status = [&](const std::string& body) { return api.call(op, "POST", "/jobs", body); };
  EXPECT_EQ(status("{").status, 400);
  EXPECT_EQ(status("[]").status, 400);
  auto u = status(R"({"filter": {}, "task": {"name": "reboot"}, "priority": 1})");
  EXPECT_EQ(u.status, 400);
  EXPECT_NE(u.json().value("detail", "").find("'priority'"), std::string::npos) << u.body;
  EXPECT_EQ(status(R"({"task": {"name": "reboot"}})").status, 400);
  EXPECT_EQ(status(R"({"filter": {}})").status, 400);
  auto f = status(R"({"filter": {"colour": "red"}, "task": {"name": "reboot"}})");
  EXPECT_EQ(f.status, 400);
  EXPECT_NE(f.json().value("detail", "").find("colour"), std::string::npos) << f.body;
  EXPECT_EQ(status(R"({"filter": {}, "task": {"name": "NoSuchRpc"}})").status, 400);
  EXPECT_EQ(status(R"({"filter": {}, "task": {"name": "reboot"}, "expires": "yesterday"})").status,
            400);
  EXPECT_EQ(api.call(rd, "POST", "/jobs", R"({"filter": {}, "task": {"name": "reboot"}})").status,
            403);
  // Injection strings in a filter are plain values: they match nothing.
  for (const std::string evil : {"' OR 1=1 --", "'); DROP TABLE devices; --"}) {
    const auto r = status(
        json{{"filter", {{"tag", evil}, {"oui", evil}}}, {"task", {{"name", "reboot"}}}}.dump());
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(wait_queued(api, op, r.json()["id"]).value("matched", -1), 0);
  }
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM devices"), "5");
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM tasks"), "0");
}

TEST(ApiJobs, AScopedTokensJobSelectsOnlyItsDevicesAndOnlyItSeesIt) {
  ApiServer api("nbijobs4");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  make_devices(api, 10);
  const std::string even = api.token("even", "operate", "even");
  const std::string all = api.token("all", "operate");
  const std::string other = api.token("other", "operate", "all");
  const auto r = api.call(even, "POST", "/jobs", R"({"filter": {}, "task": {"name": "reboot"}})");
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string path = "/jobs/" + r.json()["id"].dump();
  EXPECT_EQ(wait_queued(api, even, r.json()["id"]).value("matched", 0), 5);
  EXPECT_EQ(api.call(all, "GET", path).status, 200);  // the whole fleet's token sees every job
  EXPECT_EQ(api.call(other, "GET", path).status, 404);
  EXPECT_EQ(api.call(other, "DELETE", path).status, 404);
  EXPECT_EQ(api.call(other, "GET", "/jobs").json()["jobs"].size(), 0u);
}

TEST(ApiJobs, ProgressIsPublishedOnEvents) {
  ApiServer api("nbijobs5");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  make_devices(api, 7);
  const std::string op = api.token("op", "operate");
  test::HttpStream events(api.port(), "/events", {{"Authorization", "Bearer " + op}});
  ASSERT_EQ(events.status(), 200);
  ASSERT_TRUE(events.wait_for(": luacs events", 5s));
  const auto r = api.call(op, "POST", "/jobs", R"({"filter": {}, "task": {"name": "reboot"}})");
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string expect =
      "event: job\ndata: {\"id\":" + r.json()["id"].dump() + ",\"matched\":7,\"state\":\"queued\"}";
  EXPECT_TRUE(events.wait_for(expect, 10s)) << events.received();
}

// "connection_request": true wakes each device the job queued a task for,
// at the job's rate; a woken device calls in at once and gets the task, even
// though its copy was cached by its earlier session.
TEST(ApiJobs, AJobWakesItsDevicesAtItsRateAndTheyGetTheTaskNow) {
  ApiServer api("nbijobwake", "[connection_request]\nallow = 127.0.0.0/8\ndeny =\ntimeout = 1s\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("op", "operate");

  std::mutex mu;
  std::vector<std::thread> sessions;
  std::map<std::string, std::vector<std::string>> rpcs;  // by serial, woken sessions
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  uint16_t cr_port = 0;
  test::FakeCrCpe cpe([&](const test::FakeCrCpe::Request& r, int) {
    const std::string serial = r.target.substr(r.target.rfind('/') + 1);
    std::lock_guard lock(mu);
    arrivals.push_back(std::chrono::steady_clock::now());
    sessions.emplace_back([&, serial] {
      auto got = cwmp_session(api.cwmp_port(), serial, "6 CONNECTION REQUEST",
                              "http://127.0.0.1:" + std::to_string(cr_port) + "/cr/" + serial);
      std::lock_guard lock(mu);
      rpcs[serial] = std::move(got);
    });
    return test::FakeCrCpe::status(200);
  });
  cr_port = cpe.port();
  const std::vector<std::string> serials = {"W1", "W2", "W3", "W4", "W5", "X9"};
  for (const auto& s : serials)
    cwmp_session(api.cwmp_port(), s, "1 BOOT",
                 "http://127.0.0.1:" + std::to_string(cr_port) + "/cr/" + s);
  // Sessions are written behind: the job selects from what is stored.
  for (int i = 0; i < 100 && api.pg().value("SELECT count(*) FROM devices") != "6"; ++i)
    std::this_thread::sleep_for(50ms);

  const auto r = api.call(op, "POST", "/jobs",
                          R"({"filter": {"id_prefix": "E48D8C-hAP%20lite-W"},
                              "task": {"name": "reboot"}, "connection_request": true,
                              "rate": 4})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json()["connection_request"].value("rate", 0), 4) << r.body;
  const int64_t id = r.json().value("id", int64_t{0});
  const json j = wait_woken(api, op, id);
  const json& w = j["connection_request"];
  EXPECT_EQ(w.value("state", ""), "done") << j.dump();
  EXPECT_EQ(w.value("woken", 0), 5) << j.dump();
  EXPECT_EQ(w["outcomes"].value("answered", 0) + w["outcomes"].value("informed", 0), 5) << j.dump();

  // Every woken device called in and got its Reboot; X9 was not woken.
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard lock(mu);
      if (rpcs.size() == 5) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  {
    std::lock_guard lock(mu);
    for (auto& t : sessions) t.join();
    sessions.clear();
    EXPECT_EQ(rpcs.size(), 5u);
    EXPECT_EQ(rpcs.count("X9"), 0u);
    for (const auto& [serial, names] : rpcs)
      EXPECT_NE(std::find(names.begin(), names.end(), "Reboot"), names.end()) << serial;
    // 4 a second: five requests cannot all come within the first second.
    ASSERT_EQ(arrivals.size(), 5u);
    EXPECT_GE(arrivals.back() - arrivals.front(), 900ms);
  }
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM tasks WHERE job_id = $1 AND state = 'done'",
                           {std::to_string(id)}),
            "5");
}

TEST(ApiJobs, BadWakeFieldsAreRefusedAndACancelledJobStopsWaking) {
  ApiServer api("nbijobwake2", "[connection_request]\nallow = 127.0.0.0/8\ndeny =\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("op", "operate");
  for (const char* body :
       {R"({"filter": {}, "task": {"name": "reboot"}, "rate": 5})",
        R"({"filter": {}, "task": {"name": "reboot"}, "connection_request": "yes"})",
        R"({"filter": {}, "task": {"name": "reboot"}, "connection_request": true, "rate": 0})",
        R"({"filter": {}, "task": {"name": "reboot"}, "connection_request": true,
            "rate": 1000000})",
        R"({"filter": {}, "task": {"name": "reboot"}, "connection_request": true, "rate": 1.5})"}) {
    const auto r = api.call(op, "POST", "/jobs", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
  }
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM jobs"), "0");

  // 40 devices whose URL is on a port luacs will not contact (9 is outside
  // [connection_request] ports), woken one a second: the job is
  // cancelled after the first and wakes no more.
  api.pg().query(
      "INSERT INTO devices (id, oui, product_class, serial_number, first_seen, last_inform,"
      " parameters) SELECT 'D-' || lpad(i::text, 6, '0'), 'D', 'Box', i::text, now(), now(),"
      " jsonb_build_object('Device.ManagementServer.ConnectionRequestURL',"
      "  jsonb_build_array('http://127.0.0.1:9/cr', 'xsd:string', 0))"
      " FROM generate_series(1, 40) i");
  const auto r = api.call(op, "POST", "/jobs",
                          R"({"filter": {}, "task": {"name": "reboot"},
                              "connection_request": true, "rate": 1})");
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = std::to_string(r.json().value("id", int64_t{0}));
  for (int i = 0; i < 100; ++i) {
    if (api.pg().value("SELECT count(*) FROM connection_requests") != "0") break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(api.call(op, "DELETE", "/jobs/" + id).status, 200);
  const std::string sent = api.pg().value("SELECT count(*) FROM connection_requests");
  std::this_thread::sleep_for(2500ms);
  EXPECT_LE(std::stoi(api.pg().value("SELECT count(*) FROM connection_requests")),
            std::stoi(sent) + 1);  // one may have been on its way
  const json j = api.call(op, "GET", "/jobs/" + id).json();
  EXPECT_EQ(j["connection_request"].value("state", ""), "cancelled") << j.dump();
  EXPECT_EQ(api.pg().value("SELECT outcome FROM connection_requests ORDER BY id LIMIT 1"),
            "denied");
}
