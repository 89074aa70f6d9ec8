// The task routes: task bodies (luacs's and GenieACS's) mapped to what the
// engine runs, then POST /devices/{id}/tasks, GET /tasks, GET|DELETE
// /tasks/{id} and POST /tasks/{id}/retry against the real binary, real
// PostgreSQL and a simulated CPE.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "core/nbi/task_body.h"
#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"

using namespace luacs;
using namespace std::chrono_literals;
using nlohmann::json;
using test::ApiServer;

namespace {

constexpr int64_t kNow = 1'800'000'000'000;  // 2027-01-15T08:00:00Z

nbi::TaskSpec parsed(const json& body) {
  nbi::BodyError err;
  auto t = nbi::parse_task_body(body, kNow, &err);
  EXPECT_TRUE(t) << body.dump() << ": " << err.error << ": " << err.detail;
  return t.value_or(nbi::TaskSpec{});
}

// The 400's detail for a body that is refused.
std::string refused(const json& body) {
  nbi::BodyError err;
  auto t = nbi::parse_task_body(body, kNow, &err);
  EXPECT_FALSE(t) << body.dump() << " was taken as " << (t ? t->name : "");
  return err.error + ": " + err.detail;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const std::string kDevice = "E48D8C-hAP%20lite-";

// A device id as a path segment: its '%' escaped once more.
std::string seg(const std::string& id) {
  std::string out;
  for (char c : id) out += c == '%' ? std::string("%25") : std::string(1, c);
  return out;
}

void add_device(ApiServer& api, const std::string& id, const std::string& tags = "") {
  api.pg().query(
      "INSERT INTO devices (id, first_seen, last_inform, tags)"
      " VALUES ($1, now(), now(), string_to_array($2, ','))",
      {id, tags});
}

std::string policy_dir(const std::string& lua) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("luacs-nbi-tasks-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "10-tasks.lua") << lua;
  return dir.string();
}

}  // namespace

// ---- task bodies

TEST(TaskBody, LuacsBodiesKeepTheirNameAndArgs) {
  auto t = parsed({{"name", "SetParameterValues"},
                   {"args", {{"values", {{"Device.X", "1"}}}}},
                   {"unique_key", "wifi"},
                   {"expires", 60}});
  EXPECT_EQ(t.name, "SetParameterValues");
  EXPECT_EQ(t.args, json({{"values", {{"Device.X", "1"}}}}));
  EXPECT_EQ(t.unique_key, "wifi");
  EXPECT_EQ(t.expires_ms, kNow + 60'000);
  EXPECT_FALSE(t.genieacs);
  EXPECT_FALSE(t.policy);
  EXPECT_EQ(parsed({{"name", "FactoryReset"}}).args, json::object());
  EXPECT_EQ(parsed({{"name", "tag"}, {"args", {{"tag", "gold"}}}}).name, "tag");
  EXPECT_EQ(parsed({{"name", "GetRPCMethods"}, {"args", nullptr}}).args, json::object());
  // Anything else may be a policy task: the route asks the policy.
  EXPECT_TRUE(parsed({{"name", "tasks.adopt"}, {"args", {{"identity", "x"}}}}).policy);
  EXPECT_TRUE(parsed({{"name", "adopt"}}).policy);
}

TEST(TaskBody, LuacsBodiesAreCheckedAgainstTheRpc) {
  EXPECT_TRUE(has(refused({{"name", "GetParameterValues"}, {"args", {{"name", "Device."}}}}),
                  "'name' in GetParameterValues's args (known: names)"));
  EXPECT_TRUE(has(refused({{"name", "GetParameterValues"}}), "needs 'names'"));
  EXPECT_TRUE(has(refused({{"name", "SetParameterValues"}, {"args", {{"values", json::object()}}}}),
                  "no values to set"));
  EXPECT_TRUE(has(refused({{"name", "ScheduleInform"}, {"args", {{"delay", 0}}}}), "delay > 0"));
  EXPECT_TRUE(has(refused({{"name", "Download"}, {"args", {{"url", 5}}}}), "bad args"));
  EXPECT_TRUE(has(refused({{"name", "tag"}}), "tag needs"));
  EXPECT_TRUE(has(refused({{"name", "Reboot"}, {"arguments", {}}}), "'arguments' in the task"));
  EXPECT_TRUE(has(refused({{"name", "Reboot"}, {"args", "x"}}), "'args' must be an object"));
  EXPECT_TRUE(has(refused({{"args", {}}}), "'name'"));
  EXPECT_TRUE(has(refused(json::array()), "JSON object"));
  // GenieACS's spellings belong to GenieACS bodies.
  EXPECT_TRUE(has(refused({{"name", "Reboot"}, {"uniqueKey", "k"}}), "'uniqueKey'"));
}

TEST(TaskBody, GenieAcsGetParameterValues) {
  auto t = parsed({{"name", "getParameterValues"},
                   {"parameterNames", {"Device.DeviceInfo.UpTime", "Device.WiFi."}}});
  EXPECT_EQ(t.name, "GetParameterValues");
  EXPECT_EQ(t.args, json({{"names", {"Device.DeviceInfo.UpTime", "Device.WiFi."}}}));
  EXPECT_TRUE(t.genieacs);
  EXPECT_TRUE(has(refused({{"name", "getParameterValues"}}), "'parameterNames'"));
  EXPECT_TRUE(has(refused({{"name", "getParameterValues"}, {"parameterNames", {1}}}), "bad args"));
}

TEST(TaskBody, GenieAcsSetParameterValues) {
  auto t = parsed(
      {{"name", "setParameterValues"},
       {"parameterValues",
        {{"Device.WiFi.SSID.1.SSID", "home", "xsd:string"}, {"Device.WiFi.Radio.1.Enable", true}}},
       {"uniqueKey", "ssid"},
       {"expiry", 3600}});
  EXPECT_EQ(t.name, "SetParameterValues");
  EXPECT_EQ(t.args, json({{"values",
                           {{"Device.WiFi.SSID.1.SSID", "home", "xsd:string"},
                            {"Device.WiFi.Radio.1.Enable", true}}}}));
  EXPECT_EQ(t.unique_key, "ssid");
  EXPECT_EQ(t.expires_ms, kNow + 3'600'000);
  EXPECT_TRUE(has(refused({{"name", "setParameterValues"}, {"parameterValues", {{"Device.X"}}}}),
                  "[name, value, type?]"));
  EXPECT_TRUE(has(refused({{"name", "setParameterValues"}, {"parameterValues", json::array()}}),
                  "non-empty"));
}

TEST(TaskBody, GenieAcsRefreshObject) {
  auto t = parsed({{"name", "refreshObject"}, {"objectName", "Device.WiFi"}});
  EXPECT_EQ(t.name, "GetParameterValues");
  EXPECT_EQ(t.args, json({{"names", {"Device.WiFi."}}}));
  EXPECT_EQ(parsed({{"name", "refreshObject"}, {"objectName", "Device.WiFi."}}).args,
            json({{"names", {"Device.WiFi."}}}));
  // "": the whole data model.
  EXPECT_EQ(parsed({{"name", "refreshObject"}, {"objectName", ""}}).args, json({{"names", {""}}}));
  EXPECT_TRUE(has(refused({{"name", "refreshObject"}}), "'objectName'"));
}

TEST(TaskBody, GenieAcsAddObject) {
  auto t = parsed({{"name", "addObject"}, {"objectName", "Device.NAT.PortMapping"}});
  EXPECT_EQ(t.name, "AddObject");
  EXPECT_EQ(t.args, json({{"object", "Device.NAT.PortMapping."}}));
  EXPECT_EQ(parsed({{"name", "addObject"},
                    {"objectName", "Device.NAT.PortMapping."},
                    {"parameterValues", json::array()}})
                .name,
            "AddObject");
  EXPECT_TRUE(has(refused({{"name", "addObject"},
                           {"objectName", "Device.NAT.PortMapping"},
                           {"parameterValues", {{"Enable", true}}}}),
                  "not supported"));
}

TEST(TaskBody, GenieAcsDeleteObject) {
  auto t = parsed({{"name", "deleteObject"}, {"objectName", "Device.NAT.PortMapping.3"}});
  EXPECT_EQ(t.name, "DeleteObject");
  EXPECT_EQ(t.args, json({{"object", "Device.NAT.PortMapping.3."}}));
  EXPECT_TRUE(has(refused({{"name", "deleteObject"}, {"objectName", ""}}), "'objectName'"));
}

TEST(TaskBody, GenieAcsRebootAndFactoryReset) {
  auto r = parsed({{"name", "reboot"}});
  EXPECT_EQ(r.name, "Reboot");
  EXPECT_EQ(r.args, json::object());
  EXPECT_TRUE(r.genieacs);
  auto f = parsed({{"name", "factoryReset"}});
  EXPECT_EQ(f.name, "FactoryReset");
  EXPECT_EQ(f.args, json::object());
  EXPECT_TRUE(has(refused({{"name", "reboot"}, {"args", json::object()}}), "'args'"));
}

TEST(TaskBody, GenieAcsDownload) {
  auto t = parsed({{"name", "download"},
                   {"fileType", "1 Firmware Upgrade Image"},
                   {"url", "http://files.example.net/fw.npk"},
                   {"targetFileName", "fw.npk"}});
  EXPECT_EQ(t.name, "Download");
  EXPECT_EQ(t.args, json({{"url", "http://files.example.net/fw.npk"},
                          {"file_type", "1 Firmware Upgrade Image"},
                          {"target_file_name", "fw.npk"}}));
  // A fileName that is a URL is the URL.
  EXPECT_EQ(parsed({{"name", "download"}, {"fileName", "https://x.example/a.bin"}}).args,
            json({{"url", "https://x.example/a.bin"}}));
  EXPECT_TRUE(has(refused({{"name", "download"}, {"fileName", "fw.npk"}}), "needs 'url'"));
}

TEST(TaskBody, ExpiresIsRfc3339OrSecondsAndInTheFuture) {
  EXPECT_EQ(nbi::parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(nbi::parse_rfc3339("2027-01-15T08:00:00Z"), kNow);
  EXPECT_EQ(nbi::parse_rfc3339("2027-01-15t09:00:00.5+01:00"), kNow + 500);
  EXPECT_EQ(nbi::parse_rfc3339("2027-01-15 07:30:00-00:30"), kNow);
  for (const char* bad :
       {"2027-01-15", "2027-02-30T00:00:00Z", "2027-01-15T24:00:00Z", "2027-01-15T08:00:00",
        "2027-01-15T08:00:00Zjunk", "tomorrow", "", "2027-01-15T08:00:00.Z", "' OR 1=1 --"})
    EXPECT_FALSE(nbi::parse_rfc3339(bad)) << bad;
  EXPECT_EQ(parsed({{"name", "Reboot"}, {"expires", "2027-01-15T09:00:00Z"}}).expires_ms,
            kNow + 3'600'000);
  EXPECT_TRUE(has(refused({{"name", "Reboot"}, {"expires", "2020-01-01T00:00:00Z"}}), "future"));
  EXPECT_TRUE(has(refused({{"name", "Reboot"}, {"expires", -5}}), "> 0"));
  EXPECT_TRUE(has(refused({{"name", "Reboot"}, {"expires", "soon"}}), "RFC 3339"));
  EXPECT_TRUE(has(refused({{"name", "Reboot"}, {"expires", true}}), "RFC 3339"));
  EXPECT_TRUE(has(refused({{"name", "reboot"}, {"expires", 5}, {"expiry", 5}}), "not both"));
}

TEST(TaskBody, PolicyTasksResolveOnlyToTheRunningPolicysNames) {
  const std::vector<std::string> names = {"adopt", "upgrade"};
  EXPECT_EQ(nbi::resolve_policy_task(parsed({{"name", "adopt"}}), names), "tasks.adopt");
  EXPECT_EQ(nbi::resolve_policy_task(parsed({{"name", "tasks.upgrade"}}), names), "tasks.upgrade");
  EXPECT_FALSE(nbi::resolve_policy_task(parsed({{"name", "tasks.nope"}}), names));
  EXPECT_FALSE(nbi::resolve_policy_task(parsed({{"name", "Frobnicate"}}), names));
  EXPECT_FALSE(nbi::resolve_policy_task(parsed({{"name", "tasks."}}), names));
  const auto known = nbi::known_task_names(names);
  EXPECT_TRUE(has(known, "SetParameterValues")) << known;
  EXPECT_TRUE(has(known, "setParameterValues")) << known;
  EXPECT_TRUE(has(known, "tasks.adopt, tasks.upgrade")) << known;
  EXPECT_TRUE(has(nbi::known_task_names({}), "policy tasks: none"));
}

// ---- the routes

TEST(TaskApi, AGenieAcsTaskRoundTripsThroughASimulatedCpe) {
  ApiServer api("nbitaskrt");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("oss", "operate");
  const std::string dev = kDevice + "RT1";
  {
    test::CpeClient c(api.cwmp_port());
    ASSERT_EQ(c.post(test::inform_xml("RT1")).status, 200);
    ASSERT_EQ(c.post("").status, 204);
  }
  // The device row is written behind: the task is refused (404) until it is.
  const std::string body =
      R"({"name": "setParameterValues", "parameterValues": [["Device.WiFi.SSID.1.SSID", "luacs-rt", "xsd:string"]]})";
  test::HttpReply queued;
  for (int i = 0; i < 100; ++i) {
    queued = api.call(op, "POST", "/devices/" + seg(dev) + "/tasks", body);
    if (queued.status != 404) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(queued.status, 202) << queued.body;
  const json q = queued.json();
  const int64_t id = q.at("id").get<int64_t>();
  EXPECT_EQ(q.value("_id", ""), std::to_string(id));
  EXPECT_EQ(q.value("device", ""), dev);
  EXPECT_EQ(q.value("name", ""), "SetParameterValues");
  EXPECT_EQ(q.value("state", ""), "pending");

  // The next session sends it (the NOTIFY of the insert drops the device's
  // cached copy a few milliseconds later: a session before that sends
  // nothing, so try a few).
  bool sent = false;
  for (int i = 0; i < 20 && !sent; ++i) {
    test::CpeClient c(api.cwmp_port());
    ASSERT_EQ(c.post(test::inform_xml("RT1", "E48D8C", "hAP lite", {{"2 PERIODIC", ""}})).status,
              200);
    auto r = c.post("");
    while (r.status == 200) {
      const soap::Envelope req = test::parse_ok(r.body);
      const auto* spv = std::get_if<soap::SetParameterValues>(&req.body);
      ASSERT_NE(spv, nullptr) << r.body;
      ASSERT_EQ(spv->parameters.size(), 1u);
      EXPECT_EQ(spv->parameters[0].name, "Device.WiFi.SSID.1.SSID");
      EXPECT_EQ(spv->parameters[0].value, "luacs-rt");
      EXPECT_EQ(spv->parameters[0].type, "string");
      sent = true;
      r = c.post(
          test::message_xml(soap::SetParameterValuesResponse{0}, req.header.id.value_or("")));
    }
    EXPECT_EQ(r.status, 204);
    if (!sent) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(sent) << api.luacs().log();
  // The 204 came after the commit.
  const auto got = api.call(op, "GET", "/tasks/" + std::to_string(id));
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.json().value("state", ""), "done") << got.body;
  EXPECT_EQ(got.json().at("result"), json({{"status", 0}})) << got.body;
  EXPECT_FALSE(got.json().at("finished").is_null());
}

TEST(TaskApi, QueueReplaceListGetAndDelete) {
  ApiServer api("nbitasks");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("ops", "operate");
  const std::string read = api.token("noc", "read");
  const std::string dev = kDevice + "Q1";
  add_device(api, dev);
  const std::string tasks = "/devices/" + seg(dev) + "/tasks";

  auto a = api.call(op, "POST", tasks,
                    R"({"name": "GetParameterValues", "args": {"names": ["Device.DeviceInfo."]},
                        "expires": "2031-01-01T00:00:00Z", "unique_key": "info"})");
  ASSERT_EQ(a.status, 202) << a.body;
  const int64_t id = a.json().at("id").get<int64_t>();
  EXPECT_FALSE(a.json().contains("_id"));  // not a GenieACS body
  EXPECT_EQ(a.json().value("expires", ""), "2031-01-01T00:00:00.000Z");
  EXPECT_FALSE(a.json().value("replaced", true));
  // The same unique_key replaces the pending task's args, in place.
  auto b = api.call(op, "POST", tasks,
                    R"({"name": "GetParameterValues", "args": {"names": ["Device.WiFi."]},
                        "unique_key": "info"})");
  ASSERT_EQ(b.status, 202) << b.body;
  EXPECT_EQ(b.json().at("id").get<int64_t>(), id);
  EXPECT_TRUE(b.json().value("replaced", false));
  EXPECT_EQ(
      api.pg().value("SELECT args->'names'->>0 FROM tasks WHERE id = $1", {std::to_string(id)}),
      "Device.WiFi.");
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM tasks"), "1");
  auto c = api.call(op, "POST", tasks, R"({"name": "reboot"})");
  ASSERT_EQ(c.status, 202);
  const int64_t reboot = c.json().at("id").get<int64_t>();

  auto one = api.call(read, "GET", "/tasks/" + std::to_string(id));
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.json().value("device", ""), dev);
  EXPECT_EQ(one.json().at("args"), json({{"names", {"Device.WiFi."}}}));
  EXPECT_EQ(one.json().value("unique_key", ""), "info");
  EXPECT_EQ(api.call(read, "GET", "/tasks/999999").status, 404);
  EXPECT_EQ(api.call(read, "GET", "/tasks/abc").status, 404);

  auto all = api.call(read, "GET", "/tasks?device=" + seg(dev) + "&state=pending");
  ASSERT_EQ(all.status, 200);
  ASSERT_EQ(all.json().at("tasks").size(), 2u);
  EXPECT_EQ(all.json().at("tasks")[0].value("name", ""), "GetParameterValues");
  EXPECT_EQ(all.json().at("tasks")[1].value("name", ""), "Reboot");
  EXPECT_TRUE(all.json().at("next").is_null());
  EXPECT_EQ(api.call(read, "GET", "/tasks?state=done").json().at("tasks").size(), 0u);

  // Paged by id.
  auto p1 = api.call(read, "GET", "/tasks?limit=1");
  ASSERT_EQ(p1.status, 200);
  ASSERT_EQ(p1.json().at("tasks").size(), 1u);
  EXPECT_EQ(p1.json().at("next").get<int64_t>(), id);
  auto p2 = api.call(read, "GET", "/tasks?limit=1&after=" + std::to_string(id));
  ASSERT_EQ(p2.json().at("tasks").size(), 1u);
  EXPECT_EQ(p2.json().at("tasks")[0].at("id").get<int64_t>(), reboot);

  // Deleting: pending only.
  EXPECT_EQ(api.call(read, "DELETE", "/tasks/" + std::to_string(reboot)).status, 403);
  auto del = api.call(op, "DELETE", "/tasks/" + std::to_string(reboot));
  EXPECT_EQ(del.status, 200) << del.body;
  EXPECT_TRUE(del.json().value("deleted", false));
  EXPECT_EQ(api.call(op, "DELETE", "/tasks/" + std::to_string(reboot)).status, 404);
  api.pg().query("UPDATE tasks SET state = 'done' WHERE id = $1", {std::to_string(id)});
  auto done = api.call(op, "DELETE", "/tasks/" + std::to_string(id));
  EXPECT_EQ(done.status, 409);
  EXPECT_TRUE(has(done.json().value("detail", ""), "is done")) << done.body;
}

// Leaves device kDevice+serial cached by luacs with a pending task queued
// from `body`, sent in a session its CPE walked away from (such a task
// stays pending and is sent again next session); the task's id, "" on
// failure. luacs must run with a short [limits] idle_timeout.
std::string cached_with_pending_task(ApiServer& api, const std::string& token,
                                     const std::string& serial, const std::string& body) {
  {
    test::CpeClient c(api.cwmp_port());
    EXPECT_EQ(c.post(test::inform_xml(serial)).status, 200);
    EXPECT_EQ(c.post("").status, 204);
  }
  test::HttpReply queued;
  for (int i = 0; i < 100; ++i) {
    queued = api.call(token, "POST", "/devices/" + seg(kDevice + serial) + "/tasks", body);
    if (queued.status != 404) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(queued.status, 202) << queued.body;
  if (queued.status != 202) return "";
  bool sent = false;
  for (int i = 0; i < 20 && !sent; ++i) {
    std::this_thread::sleep_for(100ms);
    test::CpeClient c(api.cwmp_port());
    EXPECT_EQ(c.post(test::inform_xml(serial)).status, 200);
    sent = c.post("").status == 200;  // the task; the CPE goes away without answering
  }
  EXPECT_TRUE(sent);
  std::this_thread::sleep_for(2s);  // the session times out
  const auto id = std::to_string(queued.json().at("id").get<int64_t>());
  EXPECT_EQ(api.call(token, "GET", "/tasks/" + id).json().value("state", ""), "pending");
  return sent ? id : "";
}

// The names of the GetParameterValues the next session of `serial` sends
// (none: it ends at once).
std::vector<std::string> next_session_reads(ApiServer& api, const std::string& serial) {
  test::CpeClient c(api.cwmp_port());
  EXPECT_EQ(c.post(test::inform_xml(serial)).status, 200);
  const auto r = c.post("");
  if (r.status != 200) return {};
  const soap::Envelope req = test::parse_ok(r.body);
  const auto* gpv = std::get_if<soap::GetParameterValues>(&req.body);
  EXPECT_NE(gpv, nullptr) << r.body;
  return gpv ? gpv->names : std::vector<std::string>{};
}

// Deleting or replacing a task notifies: a device cached with the task
// forgets it.
TEST(TaskApi, ADeletedTaskIsNotSentFromACachedDevice) {
  ApiServer api("nbitaskdel", "[limits]\nidle_timeout = 1s\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("ops", "operate");
  const std::string id = cached_with_pending_task(
      api, op, "D1", R"({"name": "refreshObject", "objectName": "Device.DeviceInfo"})");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(api.call(op, "DELETE", "/tasks/" + id).status, 200);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(next_session_reads(api, "D1"), std::vector<std::string>{});
}

TEST(TaskApi, AReplacedTaskReachesACachedDevice) {
  ApiServer api("nbitaskrepl", "[limits]\nidle_timeout = 1s\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("ops", "operate");
  const std::string id = cached_with_pending_task(
      api, op, "U1",
      R"({"name": "GetParameterValues", "args": {"names": ["Device.DeviceInfo."]},
          "unique_key": "read"})");
  ASSERT_FALSE(id.empty());
  auto again = api.call(op, "POST", "/devices/" + seg(kDevice + "U1") + "/tasks",
                        R"({"name": "GetParameterValues", "args": {"names": ["Device.WiFi."]},
                            "unique_key": "read"})");
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(std::to_string(again.json().at("id").get<int64_t>()), id);
  EXPECT_TRUE(again.json().value("replaced", false));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(next_session_reads(api, "U1"), std::vector<std::string>{"Device.WiFi."});
}

TEST(TaskApi, RetryQueuesAFailedTaskAgain) {
  ApiServer api("nbitaskretry");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("ops", "operate");
  const std::string dev = kDevice + "R1";
  add_device(api, dev);
  const std::string tasks = "/devices/" + seg(dev) + "/tasks";
  auto q = api.call(op, "POST", tasks,
                    R"({"name": "Reboot", "args": {"command_key": "r1"}, "unique_key": "boot"})");
  ASSERT_EQ(q.status, 202);
  const std::string id = std::to_string(q.json().at("id").get<int64_t>());
  auto r = api.call(op, "POST", "/tasks/" + id + "/retry");
  EXPECT_EQ(r.status, 409);
  EXPECT_TRUE(has(r.json().value("detail", ""), "is pending")) << r.body;

  api.pg().query(
      "UPDATE tasks SET state = 'fault', result = '{\"error\": \"x\"}', finished = now()"
      " WHERE id = $1",
      {id});
  EXPECT_EQ(api.call(op, "POST", "/tasks/" + id + "/retry", R"({"when": 1})").status, 400);
  EXPECT_EQ(api.call(op, "POST", "/tasks/" + id + "/retry", R"({"expires": "x"})").status, 400);
  r = api.call(op, "POST", "/tasks/" + id + "/retry", R"({"expires": 600})");
  ASSERT_EQ(r.status, 202) << r.body;
  const json again = r.json();
  EXPECT_NE(std::to_string(again.at("id").get<int64_t>()), id);
  EXPECT_EQ(again.value("retry_of", int64_t{0}), std::stoll(id));
  EXPECT_EQ(again.value("state", ""), "pending");
  EXPECT_EQ(again.value("name", ""), "Reboot");
  EXPECT_EQ(again.at("args"), json({{"command_key", "r1"}}));
  EXPECT_EQ(again.value("unique_key", ""), "boot");
  EXPECT_FALSE(again.at("expires").is_null());
  // Its unique_key is taken by the pending retry: a second retry is refused.
  r = api.call(op, "POST", "/tasks/" + id + "/retry");
  EXPECT_EQ(r.status, 409);
  EXPECT_TRUE(has(r.json().value("detail", ""), "unique_key 'boot'")) << r.body;
  api.pg().query("UPDATE tasks SET state = 'done'");
  EXPECT_EQ(api.call(op, "POST", "/tasks/" + id + "/retry").status, 409);
  EXPECT_EQ(api.call(op, "POST", "/tasks/424242/retry").status, 404);
  EXPECT_EQ(api.call(api.token("noc", "read"), "POST", "/tasks/" + id + "/retry").status, 403);
}

TEST(TaskApi, BadRequestsAreRefusedAndNothingIsQueued) {
  ApiServer api("nbitaskbad");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("ops", "operate");
  const std::string dev = kDevice + "B1";
  add_device(api, dev);
  const std::string tasks = "/devices/" + seg(dev) + "/tasks";

  auto unknown = api.call(op, "POST", tasks, R"({"name": "Frobnicate"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_TRUE(has(unknown.json().value("detail", ""), "GetParameterValues")) << unknown.body;
  EXPECT_TRUE(has(unknown.json().value("detail", ""), "policy tasks: none")) << unknown.body;
  auto field = api.call(op, "POST", tasks, R"({"name": "Reboot", "priority": 1})");
  EXPECT_EQ(field.status, 400);
  EXPECT_TRUE(has(field.json().value("detail", ""), "'priority'")) << field.body;
  auto malformed = api.call(op, "POST", tasks, R"({"name": )");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_TRUE(has(malformed.json().value("detail", ""), "at byte")) << malformed.body;
  EXPECT_EQ(api.call(op, "POST", tasks, R"({"name": "Reboot", "expires": "yesterday"})").status,
            400);
  EXPECT_EQ(api.call(op, "POST", tasks + "?verbose=1", R"({"name": "Reboot"})").status, 400);

  // Unknown devices, injection strings included, are plain values.
  EXPECT_EQ(api.call(op, "POST", "/devices/nope/tasks", R"({"name": "Reboot"})").status, 404);
  for (const std::string evil : {"' OR 1=1 --", "'); DROP TABLE devices; --"}) {
    auto r = api.call(op, "POST", "/devices/" + test::url_escape(evil) + "/tasks",
                      R"({"name": "Reboot"})");
    EXPECT_EQ(r.status, 404) << evil << ": " << r.body;
  }
  // A unique_key and args with SQL in them are stored as they are.
  auto sql = api.call(op, "POST", tasks,
                      R"({"name": "tag", "args": {"tag": "'); DROP TABLE tasks; --"},
                          "unique_key": "' OR 1=1 --"})");
  ASSERT_EQ(sql.status, 202) << sql.body;
  EXPECT_EQ(api.pg().value("SELECT unique_key FROM tasks"), "' OR 1=1 --");
  api.pg().query("DELETE FROM tasks");

  // ?connection_request for a device without a ConnectionRequestURL: the
  // task is queued (202) and the answer says why the device was not woken.
  auto cr =
      api.call(op, "POST", tasks + "?connection_request&timeout=3000", R"({"name": "reboot"})");
  EXPECT_EQ(cr.status, 202) << cr.body;
  EXPECT_EQ(cr.json().at("connection_request").value("outcome", ""), "no_url") << cr.body;
  EXPECT_EQ(cr.json().value("state", ""), "pending");
  EXPECT_EQ(
      api.call(op, "POST", tasks + "?connection_request&timeout=0", R"({"name": "reboot"})").status,
      400);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM devices"), "1");
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM tasks"), "1");
  api.pg().query("DELETE FROM tasks");

  // The listing's filters.
  for (const std::string evil : {"' OR 1=1 --", "'); DROP TABLE devices; --"}) {
    auto r = api.call(op, "GET", "/tasks?device=" + test::url_escape(evil));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json().at("tasks").size(), 0u);
    EXPECT_EQ(api.call(op, "GET", "/tasks?state=" + test::url_escape(evil)).status, 400);
    EXPECT_EQ(api.call(op, "GET", "/tasks?after=" + test::url_escape(evil)).status, 400);
    EXPECT_EQ(api.call(op, "GET", "/tasks?limit=" + test::url_escape(evil)).status, 400);
  }
  EXPECT_EQ(api.call(op, "GET", "/tasks?limit=10001").status, 400);
  EXPECT_EQ(api.call(op, "GET", "/tasks?limit=0").status, 400);
  EXPECT_EQ(api.call(op, "GET", "/tasks?state=running").status, 400);
  EXPECT_EQ(api.call(op, "GET", "/tasks?owner=me").status, 400);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM devices"), "1");
}

TEST(TaskApi, PolicyTasksAreQueuedByTheirName) {
  ApiServer api("nbitaskpol",
                "[policy]\ndir = " +
                    policy_dir("function tasks.hello(dev, args) return {hi = args.who} end\n") +
                    "\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("ops", "operate");
  const std::string dev = kDevice + "P1";
  add_device(api, dev);
  const std::string tasks = "/devices/" + seg(dev) + "/tasks";
  auto bare = api.call(op, "POST", tasks, R"({"name": "hello", "args": {"who": "noc"}})");
  ASSERT_EQ(bare.status, 202) << bare.body;
  EXPECT_EQ(bare.json().value("name", ""), "tasks.hello");
  auto full = api.call(op, "POST", tasks, R"({"name": "tasks.hello"})");
  ASSERT_EQ(full.status, 202) << full.body;
  EXPECT_EQ(full.json().value("name", ""), "tasks.hello");
  auto nope = api.call(op, "POST", tasks, R"({"name": "tasks.goodbye"})");
  EXPECT_EQ(nope.status, 400);
  EXPECT_TRUE(has(nope.json().value("detail", ""), "policy tasks: tasks.hello")) << nope.body;

  // And it runs at the next session.
  const auto id = std::to_string(bare.json().at("id").get<int64_t>());
  test::CpeClient c(api.cwmp_port());
  ASSERT_EQ(c.post(test::inform_xml("P1")).status, 200);
  ASSERT_EQ(c.post("").status, 204);
  auto got = api.call(op, "GET", "/tasks/" + id);
  EXPECT_EQ(got.json().value("state", ""), "done") << got.body;
  EXPECT_EQ(got.json().at("result"), json({{"result", {{"hi", "noc"}}}})) << got.body;
}

TEST(TaskApi, ATagScopedTokenSeesAndActsOnlyOnItsDevices) {
  ApiServer api("nbitaskscope");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string admin = api.token("ops", "admin");
  const std::string acme = api.token("acme", "operate", "acme");
  const std::string mine = kDevice + "S1", theirs = kDevice + "S2";
  add_device(api, mine, "acme,gold");
  add_device(api, theirs, "other");
  const std::string reboot = R"({"name": "reboot"})";

  EXPECT_EQ(api.call("", "POST", "/devices/" + seg(mine) + "/tasks", reboot).status, 401);
  EXPECT_EQ(api.call("", "GET", "/tasks").status, 401);
  auto ok = api.call(acme, "POST", "/devices/" + seg(mine) + "/tasks", reboot);
  ASSERT_EQ(ok.status, 202) << ok.body;
  auto no = api.call(acme, "POST", "/devices/" + seg(theirs) + "/tasks", reboot);
  EXPECT_EQ(no.status, 403) << no.body;
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM tasks WHERE device_id = $1", {theirs}), "0");
  auto other = api.call(admin, "POST", "/devices/" + seg(theirs) + "/tasks", reboot);
  ASSERT_EQ(other.status, 202);
  const std::string other_id = std::to_string(other.json().at("id").get<int64_t>());

  auto list = api.call(acme, "GET", "/tasks");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.json().at("tasks").size(), 1u);
  EXPECT_EQ(list.json().at("tasks")[0].value("device", ""), mine);
  EXPECT_EQ(api.call(acme, "GET", "/tasks?device=" + seg(theirs)).json().at("tasks").size(), 0u);
  EXPECT_EQ(api.call(admin, "GET", "/tasks").json().at("tasks").size(), 2u);
  EXPECT_EQ(api.call(acme, "GET", "/tasks/" + other_id).status, 403);
  EXPECT_EQ(api.call(acme, "DELETE", "/tasks/" + other_id).status, 403);
  api.pg().query("UPDATE tasks SET state = 'fault'");
  EXPECT_EQ(api.call(acme, "POST", "/tasks/" + other_id + "/retry").status, 403);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM tasks"), "2");
}
