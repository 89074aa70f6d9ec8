// The auth matrix: every route the router serves x no token / read /
// operate / admin / a token scoped to another tag. Driven by the route table
// itself, so a new route is covered the day it is added.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>

#include "core/nbi/api.h"
#include "support/api_fixture.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::ApiServer;

namespace {

const std::string kDevice = "00259E-Router-A1";

struct Case {
  std::string method, path;
  nbi::Role role;
  bool fleet_wide, metrics, acts_on_device;
};

// The route table with its placeholders filled in: the device `kDevice`
// (tagged "alpha"), its task and fault, a job, a file.
std::vector<Case> cases(const std::map<std::string, std::string>& ids) {
  nbi::Api api(nbi::Options{}, nbi::Services{});
  std::vector<Case> out;
  for (const auto& r : api.router().routes()) {
    Case c{r.method, "", r.role, r.fleet_wide, r.metrics, false};
    std::string parent;
    for (const auto& seg : r.segments) {
      c.path += "/";
      if (seg.size() > 1 && seg.front() == '{') {
        const std::string key = parent + "/" + seg;
        const auto it = ids.find(key);
        c.path += it != ids.end() ? it->second : "x";
        if (key == "devices/{id}" || key == "tasks/{id}" || key == "faults/{device}")
          c.acts_on_device = true;
      } else {
        c.path += seg;
        parent = seg;
      }
    }
    out.push_back(c);
  }
  return out;
}

// A well-formed body for the routes that take one, so that what answers is
// the token check and not the body check.
std::string body_for(const Case& c) {
  if (c.method == "POST" && c.path.ends_with("/tasks")) return R"({"name": "reboot"})";
  if (c.method == "POST" && c.path == "/jobs")
    return R"({"filter": {}, "task": {"name": "reboot"}})";
  return "";
}

test::HttpReply call(ApiServer& api, const std::string& token, const Case& c) {
  test::HttpHeaders h;
  if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
  const std::string body = body_for(c);
  if (!body.empty()) h.emplace_back("Content-Type", "application/json");
  // /events streams forever: its head is all this test needs.
  const auto timeout = c.path == "/events" ? 1500ms : 30000ms;
  return test::http_request(api.port(), c.method, c.path, body, h, timeout);
}

}  // namespace

TEST(ApiMatrix, EveryRouteTimesEveryKindOfToken) {
  const auto files =
      std::filesystem::temp_directory_path() / ("luacs-matrix-files-" + std::to_string(getpid()));
  std::filesystem::create_directories(files);
  ApiServer api("nbimatrix", "[files]\nlisten = 127.0.0.1:0\ndir = " + files.string() + "\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  api.pg().query(
      "INSERT INTO devices (id, oui, product_class, serial_number, first_seen, last_inform, tags) "
      "VALUES ($1, '00259E', 'Router', 'A1', now(), now(), '{alpha}')",
      {kDevice});
  const std::string task_id = api.pg().value(
      "INSERT INTO tasks (device_id, name) VALUES ($1, 'Reboot') RETURNING id", {kDevice});
  api.pg().query("INSERT INTO faults (device_id, source, message) VALUES ($1, 'policy', 'x')",
                 {kDevice});
  const std::map<std::string, std::string> ids = {
      {"devices/{id}", kDevice},     {"tasks/{id}", task_id}, {"faults/{device}", kDevice},
      {"faults/{source}", "policy"}, {"tags/{tag}", "beta"},  {"jobs/{id}", "1"},
      {"files/{name}", "fw.bin"}};
  const std::string read = api.token("r", "read");
  const std::string operate = api.token("o", "operate");
  const std::string admin = api.token("a", "admin");
  const std::string other = api.token("b", "admin", "beta");  // scoped to a tag dev-a lacks

  const auto all = cases(ids);
  ASSERT_GE(all.size(), 20u);
  // Scoped first, admin last: admin's DELETEs remove what the others need.
  for (const auto& c : all) {
    SCOPED_TRACE(c.method + " " + c.path);
    if (c.role == nbi::Role::kNone) continue;
    const auto r = call(api, other, c);
    if (c.fleet_wide || c.acts_on_device) {
      EXPECT_EQ(r.status, 403) << r.body;
    } else {
      EXPECT_NE(r.status, 401) << r.body;
      EXPECT_NE(r.status, 403) << r.body;
    }
  }
  for (const auto& c : all) {
    SCOPED_TRACE(c.method + " " + c.path);
    const auto none = call(api, "", c);
    if (c.method == "GET" && c.path == "/login") {
      // Open, but what it answers is the session cookie's: none here.
      EXPECT_EQ(none.status, 401) << none.body;
    } else if (c.role == nbi::Role::kNone || c.metrics) {
      EXPECT_NE(none.status, 401) << none.body;  // /metrics: open to loopback by default
    } else {
      EXPECT_EQ(none.status, 401) << none.body;
    }
    if (c.role == nbi::Role::kNone) continue;
    const auto r = call(api, read, c);
    EXPECT_EQ(r.status == 403, c.role > nbi::Role::kRead) << r.body;
    const auto o = call(api, operate, c);
    EXPECT_EQ(o.status == 403, c.role > nbi::Role::kOperate) << o.body;
  }
  for (const auto& c : all) {
    SCOPED_TRACE(c.method + " " + c.path);
    if (c.method == "GET" && c.path == "/login") continue;  // the cookie's, never a token's
    const auto a = call(api, admin, c);
    EXPECT_NE(a.status, 401) << a.body;
    EXPECT_NE(a.status, 403) << a.body;
    EXPECT_NE(a.status, 0) << a.error;
  }
  std::filesystem::remove_all(files);
}
