// Connection requests through the API, end to end: the real binary and
// PostgreSQL, a simulated CPE on 127.0.0.1 that requires Digest (or Basic)
// on its connection-request URL and, once woken, opens a CWMP session with
// `6 CONNECTION REQUEST`.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/fake_cr_cpe.h"
#include "support/http_client.h"

using namespace luacs;
using namespace std::chrono_literals;
using nlohmann::json;
using test::ApiServer;
using test::FakeCrCpe;
using Reply = FakeCrCpe::Reply;

namespace {

const std::string kIni =
    "[connection_request]\nallow = 127.0.0.0/8\ndeny =\nusername = acs\npassword = secret\n"
    "timeout = 1s\n";
const std::string kQop = R"(Digest realm="cpe", nonce="n0nce", qop="auth", opaque="op")";
const std::string kNoQop = R"(Digest realm="cpe", nonce="n0nce")";

std::string device_id(const std::string& serial) {
  return "E48D8C-hAP%20lite-" + serial;
}

void add_device(ApiServer& api, const std::string& serial, const std::string& url,
                const std::string& tags = "") {
  const json params = {{"Device.ManagementServer.ConnectionRequestURL", {url, "xsd:string", 0}}};
  api.pg().query(
      "INSERT INTO devices (id, oui, product_class, serial_number, first_seen, last_inform, tags,"
      " parameters) VALUES ($1, 'E48D8C', 'hAP lite', $2, now(), now(),"
      " string_to_array($3, ','), $4::jsonb)",
      {device_id(serial), serial, tags, params.dump()});
}

// A CWMP session with `6 CONNECTION REQUEST`, answering SetParameterValues.
void woken_session(uint16_t cwmp_port, const std::string& serial) {
  test::CpeClient c(cwmp_port);
  auto r = c.post(test::inform_xml(serial, "E48D8C", "hAP lite", {{"6 CONNECTION REQUEST", ""}}));
  EXPECT_EQ(r.status, 200) << r.body;
  r = c.post("");
  while (r.status == 200) {
    const soap::Envelope req = test::parse_ok(r.body);
    ASSERT_NE(std::get_if<soap::SetParameterValues>(&req.body), nullptr) << r.body;
    r = c.post(test::message_xml(soap::SetParameterValuesResponse{0}, req.header.id.value_or("")));
  }
  EXPECT_EQ(r.status, 204);
}

// The CPE: challenges with `challenge`, checks the answer against
// acs/`password`, answers 204 and starts its session.
class Cpe {
 public:
  Cpe(ApiServer& api, std::string serial, std::string challenge, std::string password = "secret")
      : cpe_([this, &api, serial, challenge, password](const FakeCrCpe::Request& r, int) {
          if (r.authorization.empty()) return FakeCrCpe::challenge(challenge);
          const bool ok =
              challenge.rfind("Basic", 0) == 0
                  ? r.authorization == "Basic YWNzOnNlY3JldA=="
                  : FakeCrCpe::digest_ok(r.authorization, "acs", password, "cpe", "n0nce", "/cr");
          if (!ok) return FakeCrCpe::challenge(challenge);
          std::lock_guard lock(mu_);
          sessions_.emplace_back(woken_session, api.cwmp_port(), serial);
          return FakeCrCpe::status(204);
        }) {}
  ~Cpe() {
    std::lock_guard lock(mu_);
    for (auto& t : sessions_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(cpe_.port()) + "/cr"; }
  const FakeCrCpe& fake() const { return cpe_; }

 private:
  std::mutex mu_;
  std::vector<std::thread> sessions_;
  FakeCrCpe cpe_;  // last: its thread stops before the rest goes
};

std::string wake_path(const std::string& serial, const std::string& query = "") {
  return "/devices/" + test::url_escape(device_id(serial)) + "/connection_request" + query;
}

}  // namespace

TEST(ConnreqApi, DigestWakesTheDeviceAndTheAttemptIsRecorded) {
  ApiServer api("nbicrdigest", kIni);
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("oss", "operate");
  const std::string reader = api.token("ro", "read");

  for (const auto& [serial, challenge] : {std::pair{"Q1", kQop}, std::pair{"N1", kNoQop}}) {
    Cpe cpe(api, serial, challenge);
    add_device(api, serial, cpe.url());
    EXPECT_EQ(api.call(reader, "POST", wake_path(serial)).status, 403);
    const auto r = api.call(op, "POST", wake_path(serial));
    ASSERT_EQ(r.status, 200) << r.body << api.luacs().log();
    EXPECT_EQ(r.json().value("outcome", ""), "informed");
    EXPECT_GE(r.json().value("latency_ms", -1), 0);
    const auto reqs = cpe.fake().requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[1].authorization.find("qop=auth") != std::string::npos,
              std::string(challenge) == kQop)
        << reqs[1].authorization;
    // The attempt is closed by the Inform (written just after the answer).
    std::string row;
    for (int i = 0; i < 50; ++i) {
      row = api.pg().value(
          "SELECT outcome || ' ' || http_status || ' ' || (informed IS NOT NULL) || ' ' ||"
          " (latency_ms >= 0) FROM connection_requests WHERE device_id = $1",
          {device_id(serial)});
      if (row == "answered 204 true true") break;
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(row, "answered 204 true true");
    const auto listed = api.call(
        reader, "GET", "/devices/" + test::url_escape(device_id(serial)) + "/connection_requests");
    ASSERT_EQ(listed.status, 200) << listed.body;
    const json a = listed.json().at("connection_requests");
    ASSERT_EQ(a.size(), 1u) << listed.body;
    EXPECT_EQ(a[0].value("outcome", ""), "answered");
    EXPECT_EQ(a[0].value("http_status", 0), 204);
    EXPECT_EQ(a[0].value("transport", ""), "http");
    EXPECT_GE(a[0].value("latency_ms", -1), 0);
    EXPECT_FALSE(a[0].at("informed").is_null());
  }
  EXPECT_EQ(api.call(reader, "GET", "/devices/nobody/connection_requests").status, 404);
  // /metrics: the attempts by outcome, and the request -> Inform latency.
  const auto m = api.call("", "GET", "/metrics");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_NE(
      m.body.find(R"(luacs_connection_requests_total{outcome="answered",transport="http"} 2)"),
      std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find(R"(luacs_connection_request_latency_seconds_count{transport="http"} 2)"),
            std::string::npos)
      << m.body;
}

TEST(ConnreqApi, FailuresAnswer504WithTheReason) {
  ApiServer api("nbicrfail", kIni);
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("oss", "operate");

  {  // Basic is not answered without allow_basic: the password never goes out
    Cpe cpe(api, "B1", R"(Basic realm="cpe")");
    add_device(api, "B1", cpe.url());
    const auto r = api.call(op, "POST", wake_path("B1"));
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(r.json().value("error", ""), "auth failed");
    EXPECT_NE(r.json().value("detail", "").find("allow_basic"), std::string::npos) << r.body;
    EXPECT_EQ(cpe.fake().requests().size(), 1u);
  }
  {  // wrong credentials: one answer, refused, recorded
    Cpe cpe(api, "W1", kQop, "not-the-password");
    add_device(api, "W1", cpe.url());
    const auto r = api.call(op, "POST", wake_path("W1"));
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(r.json().value("error", ""), "auth failed");
    EXPECT_EQ(cpe.fake().requests().size(), 2u);
    EXPECT_EQ(api.pg().value("SELECT outcome || ' ' || http_status FROM connection_requests"
                             " WHERE device_id = $1",
                             {device_id("W1")}),
              "auth_failed 401");
  }
  {  // a CPE that accepts and never answers: the 1 s timeout
    FakeCrCpe cpe([](const FakeCrCpe::Request&, int) { return Reply{"", false, true}; });
    add_device(api, "T1", "http://127.0.0.1:" + std::to_string(cpe.port()) + "/cr");
    const auto r = api.call(op, "POST", wake_path("T1"));
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(r.json().value("error", ""), "timed out");
  }
  {  // link-local: denied, nothing sent
    add_device(api, "L1", "http://169.254.1.1:7547/cr");
    const auto r = api.call(op, "POST", wake_path("L1"));
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(r.json().value("error", ""), "denied target");
  }
  {  // no URL
    add_device(api, "U1", "");
    const auto r = api.call(op, "POST", wake_path("U1"));
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(r.json().value("error", ""), "no connection request URL");
  }
  EXPECT_EQ(api.call(op, "POST", wake_path("nobody")).status, 404);
  EXPECT_EQ(api.call(op, "POST", wake_path("U1", "?timeout=120001")).status, 400);
  EXPECT_EQ(api.call(op, "POST", wake_path("U1", "?bogus=1")).status, 400);

  // A token scoped to a tag wakes only the devices carrying it.
  const std::string scoped = api.token("shop", "operate", "shop");
  EXPECT_EQ(api.call(scoped, "POST", wake_path("U1")).status, 403);
  add_device(api, "S1", "", "shop");
  EXPECT_EQ(api.call(scoped, "POST", wake_path("S1")).status, 504);
}

TEST(ConnreqApi, LoopbackIsDeniedByDefault) {
  ApiServer api("nbicrdeny", "[connection_request]\nusername = acs\npassword = secret\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("oss", "operate");
  Cpe cpe(api, "D1", kQop);
  add_device(api, "D1", cpe.url());
  const auto r = api.call(op, "POST", wake_path("D1"));
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(r.json().value("error", ""), "denied target");
  EXPECT_EQ(r.json().value("detail", ""), "address 127.0.0.1 is denied");
  EXPECT_EQ(cpe.fake().connections(), 0);
  EXPECT_EQ(api.pg().value("SELECT outcome FROM connection_requests"), "denied");
}

TEST(ConnreqApi, ConcurrentWakesOfOneDeviceSendOneRequest) {
  ApiServer api("nbicrmerge", kIni);
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("oss", "operate");
  // The CPE takes its time with the first GET, so that both wakes meet.
  std::vector<std::thread> sessions;
  FakeCrCpe cpe([&](const FakeCrCpe::Request& r, int) {
    if (r.authorization.empty()) {
      std::this_thread::sleep_for(300ms);
      return FakeCrCpe::challenge(kQop);
    }
    if (!FakeCrCpe::digest_ok(r.authorization, "acs", "secret", "cpe", "n0nce", "/cr"))
      return FakeCrCpe::challenge(kQop);
    sessions.emplace_back(woken_session, api.cwmp_port(), "M1");
    return FakeCrCpe::status(204);
  });
  add_device(api, "M1", "http://127.0.0.1:" + std::to_string(cpe.port()) + "/cr");
  test::HttpReply a, b;
  std::thread ta([&] { a = api.call(op, "POST", wake_path("M1")); });
  std::thread tb([&] { b = api.call(op, "POST", wake_path("M1")); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(a.json().value("attempt", 0), b.json().value("attempt", -1));
  EXPECT_EQ(cpe.requests().size(), 2u);  // one GET, and its answer to the 401
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM connection_requests"), "1");
  for (auto& t : sessions) t.join();
}

TEST(ConnreqApi, TaskWithConnectionRequestAnswersTheTaskResult) {
  ApiServer api("nbicrtask", kIni);
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("oss", "operate");
  Cpe cpe(api, "K1", kQop);
  add_device(api, "K1", cpe.url());
  const auto r = api.call(
      op, "POST",
      "/devices/" + test::url_escape(device_id("K1")) + "/tasks?connection_request&timeout=10000",
      R"({"name": "setParameterValues", "parameterValues": [["Device.WiFi.SSID.1.SSID", "now", "xsd:string"]]})");
  ASSERT_EQ(r.status, 200) << r.body << api.luacs().log();
  EXPECT_EQ(r.json().value("state", ""), "done") << r.body;
  EXPECT_EQ(r.json().at("result"), json({{"status", 0}})) << r.body;
}

// A CPE reads its ConnectionRequestPassword back empty: luacs remembers what
// it set with SetParameterValues and wakes the device with it from then on.
TEST(ConnreqApi, CredentialsLuacsSetAreRemembered) {
  ApiServer api("nbicrcreds", kIni);
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("oss", "operate");
  std::mutex mu;
  std::string password = "secret";  // what the CPE checks now
  std::vector<std::thread> sessions;
  FakeCrCpe cpe([&](const FakeCrCpe::Request& r, int) {
    std::lock_guard lock(mu);
    if (r.authorization.empty() ||
        !FakeCrCpe::digest_ok(r.authorization, "acs", password, "cpe", "n0nce", "/cr"))
      return FakeCrCpe::challenge(kQop);
    sessions.emplace_back(woken_session, api.cwmp_port(), "C1");
    return FakeCrCpe::status(204);
  });
  add_device(api, "C1", "http://127.0.0.1:" + std::to_string(cpe.port()) + "/cr");
  const auto set = api.call(
      op, "POST",
      "/devices/" + test::url_escape(device_id("C1")) + "/tasks?connection_request&timeout=10000",
      R"({"name": "setParameterValues", "parameterValues": [["Device.ManagementServer.ConnectionRequestPassword", "per-device", "xsd:string"]]})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.json().value("state", ""), "done") << set.body;
  std::string kept;
  for (int i = 0; i < 100 && kept.empty(); ++i) {
    kept = api.pg().value(
        "SELECT coalesce(username, '-') || ' ' || password FROM connection_request_credentials"
        " WHERE device_id = $1",
        {device_id("C1")});
    if (kept.empty()) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(kept, "- per-device");
  {
    std::lock_guard lock(mu);
    password = "per-device";
  }
  const auto r = api.call(op, "POST", wake_path("C1"));
  EXPECT_EQ(r.status, 200) << r.body;  // the fleet's "secret" would be refused now
  {
    std::lock_guard lock(mu);
    for (auto& t : sessions) t.join();
    sessions.clear();
  }
}

// connection_request_auth(dev) comes first: the CPE whose policy-derived
// password differs from the fleet's is woken with the policy's; a device
// the hook answers nil for gets the fleet's.
TEST(ConnreqApi, ThePolicyHookGivesEachDeviceItsCredentials) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("luacs-crauth-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir / "cr.lua");
    f << "function connection_request_auth(dev)\n"
         "  if dev:has_tag('own') then\n"
         "    return 'cpe-' .. dev.serial, luacs.hmac_sha256('k', dev.serial)\n"
         "  end\n"
         "end\n";
  }
  ApiServer api("nbicrpolicy", kIni + "[policy]\ndir = " + dir.string() + "\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string op = api.token("oss", "operate");
  // HMAC-SHA256("k", "P1"), as `printf P1 | openssl dgst -sha256 -hmac k` says.
  const std::string derived = "f7942635133e102324dd5b0d9ae718f7c7e08261c1028c8025fe9b2666aa03be";

  std::vector<std::string> answers;
  std::mutex mu;
  FakeCrCpe cpe([&](const FakeCrCpe::Request& r, int) {
    if (r.authorization.empty()) return FakeCrCpe::challenge(kQop);
    std::lock_guard lock(mu);
    answers.push_back(r.authorization);
    return FakeCrCpe::status(401);  // the test reads the answer, not the session
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(cpe.port()) + "/cr";
  add_device(api, "P1", url, "own");
  add_device(api, "F1", url);
  EXPECT_EQ(api.call(op, "POST", wake_path("P1", "?timeout=1000")).status, 504);
  EXPECT_EQ(api.call(op, "POST", wake_path("F1", "?timeout=1000")).status, 504);
  std::lock_guard lock(mu);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_TRUE(FakeCrCpe::digest_ok(answers[0], "cpe-P1", derived, "cpe", "n0nce", "/cr"))
      << answers[0];
  EXPECT_TRUE(FakeCrCpe::digest_ok(answers[1], "acs", "secret", "cpe", "n0nce", "/cr"))
      << answers[1];
  std::filesystem::remove_all(dir);
}
