// The web page's server side: its files from [nbi] web_dir with their
// security headers, the login that trades a token for a session cookie
// (CSRF, roles, revocation), GET /metrics/history and GET /overview. Real
// binary, real PostgreSQL, real sockets.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::ApiServer;
using test::CpeClient;
using test::HttpHeaders;
using test::HttpReply;
using test::inform_xml;

namespace {

const std::string kCsp =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const std::string kIndex =
    "<!doctype html><html><head><link rel=\"stylesheet\" href=\"/ui/style.css\">"
    "<script type=\"module\" src=\"/ui/app.js\"></script></head><body></body></html>\n";

// A web_dir for one test: a page of three files, and what must not be
// served next to them.
std::string make_web_dir(std::string* app_js) {
  char tmpl[] = "/tmp/luacs-web-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
  };
  write("index.html", kIndex);
  std::string js = "import { api } from './api.js';\n";
  for (int i = 0; i < 200; ++i) js += "console.log('line " + std::to_string(i % 7) + "');\n";
  *app_js = js;
  write("app.js", js);
  write("style.css", "body { color: #222; }\n");
  write("bad name.js", "x");
  mkdir((dir + "/sub").c_str(), 0755);
  write("sub/inner.js", "x");
  EXPECT_EQ(symlink("/etc/passwd", (dir + "/passwd.txt").c_str()), 0);
  return dir;
}

std::string web_ini(const std::string& dir, const std::string& more = "") {
  return "[nbi]\nlisten = 127.0.0.1:0\nweb_dir = " + dir + "\nhistory_step = 1s\n" + more;
}

// The value of the luacs_session cookie a Set-Cookie header sets.
std::string cookie_of(const HttpReply& r) {
  const std::string h = r.header("Set-Cookie");
  const std::string key = "luacs_session=";
  if (h.rfind(key, 0) != 0) return "";
  return h.substr(key.size(), h.find(';') - key.size());
}

struct Login {
  std::string cookie, csrf;
};

Login login(ApiServer& api, const std::string& token) {
  const auto r = api.call("", "POST", "/login", nlohmann::json{{"token", token}}.dump());
  EXPECT_EQ(r.status, 200) << r.body;
  return {cookie_of(r), r.json().value("csrf", "")};
}

HttpReply with_cookie(ApiServer& api, const Login& l, const std::string& method,
                      const std::string& target, bool csrf, const std::string& body = "") {
  HttpHeaders h = {{"Cookie", "theme=dark; luacs_session=" + l.cookie}};
  if (csrf) h.emplace_back("X-CSRF-Token", l.csrf);
  return api.call("", method, target, body, h);
}

void add_device(ApiServer& api, const std::string& id, const std::string& tags,
                const std::string& model, const std::string& sw,
                const std::string& informed = "now()") {
  api.pg().query(
      "INSERT INTO devices (id, first_seen, last_inform, tags, parameters) VALUES ($1, now(), " +
          informed +
          ", $2::text[], jsonb_build_object('Device.DeviceInfo.ModelName', "
          "jsonb_build_array($3::text, 'xsd:string', 0), 'Device.DeviceInfo.SoftwareVersion', "
          "jsonb_build_array($4::text, 'xsd:string', 0)))",
      {id, tags, model, sw});
}

}  // namespace

TEST(ApiWeb, TheFilesAreServedFromMemoryWithTheirHeaders) {
  std::string js;
  const std::string dir = make_web_dir(&js);
  ApiServer api("nbiwebfiles", web_ini(dir));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  // Read at start: changing the folder now changes nothing served.
  std::ofstream(dir + "/late.js") << "x";

  for (const char* target : {"/", "/ui/", "/ui", "/ui/index.html"}) {
    const auto r = api.call("", "GET", target);  // no token needed
    ASSERT_EQ(r.status, 200) << target << " " << r.body;
    EXPECT_EQ(r.body, kIndex) << target;
    EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(r.header("Content-Security-Policy"), kCsp);
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(r.header("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(r.header("X-Frame-Options"), "DENY");
    EXPECT_EQ(r.header("Cache-Control"), "no-cache");
  }
  const auto css = api.call("", "GET", "/ui/style.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.header("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(css.body, "body { color: #222; }\n");

  // The script, plain and gzipped; HEAD has the head alone.
  const auto plain = api.call("", "GET", "/ui/app.js");
  ASSERT_EQ(plain.status, 200);
  EXPECT_EQ(plain.header("Content-Type"), "application/javascript; charset=utf-8");
  EXPECT_EQ(plain.body, js);
  EXPECT_EQ(plain.header("Content-Encoding"), "");
  const auto gz = api.call("", "GET", "/ui/app.js", "", {{"Accept-Encoding", "br, gzip"}});
  ASSERT_EQ(gz.status, 200);
  EXPECT_EQ(gz.header("Content-Encoding"), "gzip");
  EXPECT_EQ(gz.header("Vary"), "Accept-Encoding");
  EXPECT_LT(gz.body.size(), js.size() / 4);
  EXPECT_EQ(gz.body.substr(0, 2), "\x1f\x8b");
  EXPECT_EQ(gz.header("ETag"), plain.header("ETag"));
  const auto refused = api.call("", "GET", "/ui/app.js", "", {{"Accept-Encoding", "gzip;q=0"}});
  EXPECT_EQ(refused.header("Content-Encoding"), "");
  const auto head = api.call("", "HEAD", "/ui/app.js");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.header("Content-Length"), std::to_string(js.size()));

  // ETag -> 304, with the security headers; another tag -> 200.
  const std::string etag = plain.header("ETag");
  ASSERT_EQ(etag.size(), 18u) << etag;
  const auto same = api.call("", "GET", "/ui/app.js", "", {{"If-None-Match", etag}});
  EXPECT_EQ(same.status, 304);
  EXPECT_EQ(same.body, "");
  EXPECT_EQ(same.header("ETag"), etag);
  EXPECT_EQ(same.header("Content-Security-Policy"), kCsp);
  EXPECT_EQ(
      api.call("", "GET", "/ui/app.js", "", {{"If-None-Match", "\"0123\", W/" + etag}}).status,
      304);
  EXPECT_EQ(api.call("", "GET", "/ui/app.js", "", {{"If-None-Match", "\"0123\""}}).status, 200);
  EXPECT_NE(api.call("", "GET", "/ui/style.css").header("ETag"), etag);

  // Nothing but the files read at start; no way out of the folder.
  for (const char* target : {"/ui/late.js", "/ui/nope.js", "/ui/passwd.txt", "/ui/sub",
                             "/ui/sub/inner.js", "/ui/bad%20name.js", "/ui/../api.ini",
                             "/ui/..%2f..%2fetc%2fpasswd", "/ui/%2e%2e", "/ui/.", "/index.html"}) {
    const auto r = api.call("", "GET", target);
    EXPECT_EQ(r.status, 404) << target << " " << r.body;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << target;
  }
  EXPECT_EQ(api.call("", "POST", "/", "x").status, 405);
  // The API itself still wants a token.
  EXPECT_EQ(api.call("", "GET", "/devices").status, 401);
  std::filesystem::remove_all(dir);
}

TEST(ApiWeb, WithoutAFolderThereIsNoPage) {
  ApiServer api("nbiwebnone", "[nbi]\nlisten = 127.0.0.1:0\nweb_dir =\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  EXPECT_EQ(api.call("", "GET", "/").status, 404);
  EXPECT_EQ(api.call("", "GET", "/ui/app.js").status, 404);
  EXPECT_EQ(api.call("", "GET", "/healthz").status, 200);
}

TEST(ApiWeb, LoginTradesATokenForACookieAndLogoutEndsIt) {
  std::string js;
  const std::string dir = make_web_dir(&js);
  ApiServer api("nbiweblogin", web_ini(dir));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string read = api.token("noc", "read");
  const std::string op = api.token("desk", "operate", "cust-a");
  add_device(api, "DEV-1", "{cust-a}", "hAP ax2", "7.15");

  // A bad token: 401, no cookie.
  const auto bad =
      api.call("", "POST", "/login", R"({"token": "lcs_1_)" + std::string(64, 'a') + R"("})");
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.json().value("error", ""), "invalid token");
  EXPECT_EQ(bad.header("Set-Cookie"), "");
  EXPECT_EQ(api.call("", "POST", "/login", "{}").status, 400);
  EXPECT_EQ(api.call("", "POST", "/login", "{\"token\": 3}").status, 400);

  // A good one: the session's JSON and the cookie with its flags.
  const auto ok = api.call("", "POST", "/login", nlohmann::json{{"token", read}}.dump());
  ASSERT_EQ(ok.status, 200) << ok.body;
  const auto j = ok.json();
  EXPECT_EQ(j.value("name", ""), "noc");
  EXPECT_EQ(j.value("role", ""), "read");
  EXPECT_TRUE(j.at("scope").is_null());
  const std::string csrf = j.value("csrf", "");
  EXPECT_EQ(csrf.size(), 64u);
  EXPECT_EQ(j.value("expires", "").size(), 20u) << j;
  const std::string cookie = cookie_of(ok);
  ASSERT_EQ(cookie.size(), 64u) << ok.header("Set-Cookie");
  EXPECT_NE(cookie, csrf);
  EXPECT_EQ(ok.header("Set-Cookie"),
            "luacs_session=" + cookie + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=604800");
  const Login noc{cookie, csrf};

  // GET /login: the same session, no new cookie; without one 401.
  const auto again = with_cookie(api, noc, "GET", "/login", false);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json().value("csrf", ""), csrf);
  EXPECT_EQ(again.json().value("name", ""), "noc");
  EXPECT_EQ(again.header("Set-Cookie"), "");
  EXPECT_EQ(api.call("", "GET", "/login").status, 401);
  EXPECT_EQ(api.call("", "GET", "/login", "", {{"Cookie", "luacs_session=" + std::string(64, 'f')}})
                .status,
            401);

  // The cookie works on any GET route, with no CSRF header.
  const auto list = with_cookie(api, noc, "GET", "/devices", false);
  EXPECT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(with_cookie(api, noc, "GET", "/devices/DEV-1", false).status, 200);

  // A read session with the right CSRF header is still a read token.
  const auto tag_read = with_cookie(api, noc, "PUT", "/devices/DEV-1/tags/x", true);
  EXPECT_EQ(tag_read.status, 403) << tag_read.body;
  EXPECT_NE(tag_read.body.find("has role read"), std::string::npos) << tag_read.body;

  // Operate, scoped: a POST-like request without or with a wrong CSRF header
  // is refused; with it, it works.
  const Login desk = login(api, op);
  const auto desk_me = with_cookie(api, desk, "GET", "/login", false).json();
  EXPECT_EQ(desk_me.value("role", ""), "operate");
  EXPECT_EQ(desk_me.value("scope", ""), "cust-a");
  const auto no_csrf = with_cookie(api, desk, "PUT", "/devices/DEV-1/tags/vip", false);
  EXPECT_EQ(no_csrf.status, 403);
  EXPECT_EQ(no_csrf.json().value("error", ""), "missing or wrong CSRF token");
  Login forged = desk;
  forged.csrf = noc.csrf;
  EXPECT_EQ(with_cookie(api, forged, "PUT", "/devices/DEV-1/tags/vip", true).status, 403);
  forged.csrf = "";
  EXPECT_EQ(with_cookie(api, forged, "PUT", "/devices/DEV-1/tags/vip", true).status, 403);
  EXPECT_EQ(api.pg().value("SELECT 'vip' = ANY(tags) FROM devices WHERE id = 'DEV-1'"), "f");
  const auto tagged = with_cookie(api, desk, "PUT", "/devices/DEV-1/tags/vip", true);
  EXPECT_EQ(tagged.status, 204) << tagged.body;
  EXPECT_EQ(api.pg().value("SELECT 'vip' = ANY(tags) FROM devices WHERE id = 'DEV-1'"), "t");
  // The scope holds too: a device without the tag is out of reach.
  add_device(api, "DEV-2", "{}", "hAP ax2", "7.15");
  EXPECT_EQ(with_cookie(api, desk, "GET", "/devices/DEV-2", false).status, 403);
  // A bearer token wins over the cookie (and needs no CSRF header).
  HttpHeaders both = {{"Cookie", "luacs_session=" + noc.cookie}};
  EXPECT_EQ(api.call(op, "PUT", "/devices/DEV-1/tags/vip2", "", both).status, 204);

  // Logout needs the CSRF header, clears the cookie and ends the session.
  EXPECT_EQ(with_cookie(api, noc, "POST", "/logout", false).status, 403);
  const auto out = with_cookie(api, noc, "POST", "/logout", true);
  EXPECT_EQ(out.status, 204) << out.body;
  EXPECT_EQ(out.header("Set-Cookie"),
            "luacs_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
  EXPECT_EQ(with_cookie(api, noc, "GET", "/devices", false).status, 401);
  EXPECT_EQ(with_cookie(api, noc, "GET", "/login", false).status, 401);
  // The other session lives on.
  EXPECT_EQ(with_cookie(api, desk, "GET", "/devices", false).status, 200);

  // No secret reaches the log.
  const std::string log = api.luacs().log();
  for (const auto& secret : {read.substr(read.rfind('_') + 1), cookie, csrf, desk.cookie})
    EXPECT_EQ(log.find(secret), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ApiWeb, BadLoginsAreThrottledAndARevokedTokenEndsItsSessions) {
  ApiServer api("nbiwebthrottle", web_ini(""));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string read = api.token("noc", "read");
  const Login noc = login(api, read);
  ASSERT_EQ(with_cookie(api, noc, "GET", "/devices", false).status, 200);

  // Five free failures, then each further attempt waits (250 ms, doubling).
  const std::string wrong = R"({"token": "lcs_1_)" + std::string(64, 'b') + R"("})";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(api.call("", "POST", "/login", wrong).status, 401);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(api.call("", "POST", "/login", wrong).status, 401);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 240ms);
  // The same Throttle as bearer tokens: a bearer request waits as well.
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(api.call(read, "GET", "/devices").status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 480ms);
  EXPECT_EQ(api.call("", "POST", "/login", nlohmann::json{{"token", read}}.dump()).status, 200);

  // Revoked: the session ends (the revoke's NOTIFY, or the 5 s token cache).
  EXPECT_EQ(api.cli({"revoke", "noc"}).status, 0);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    status = with_cookie(api, noc, "GET", "/devices", false).status;
    if (status == 401) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 401);
  EXPECT_EQ(with_cookie(api, noc, "GET", "/login", false).status, 401);
}

TEST(ApiWeb, HistoryCountsWhatHappensPerStep) {
  ApiServer api("nbiwebhistory", web_ini(""));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string read = api.token("noc", "read");
  const auto first = api.call(read, "GET", "/metrics/history");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json().value("step_s", 0), 1);
  EXPECT_TRUE(first.json().at("series").contains("sessions")) << first.body;
  EXPECT_TRUE(first.json().at("series").contains("sessions_in_flight")) << first.body;

  for (const char* serial : {"H1", "H2", "H3"}) {
    CpeClient c(api.cwmp_port());
    ASSERT_EQ(c.post(inform_xml(serial)).status, 200);
    ASSERT_EQ(c.post("").status, 204);
  }
  // The next samples hold the three sessions, spread over the steps.
  int64_t sessions = 0;
  nlohmann::json j;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto r = api.call(read, "GET", "/metrics/history?minutes=5");
    ASSERT_EQ(r.status, 200);
    j = r.json();
    sessions = 0;
    for (const auto& v : j.at("series").at("sessions")) sessions += v.get<int64_t>();
    if (sessions >= 3) break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(sessions, 3) << j;
  const auto& t = j.at("t");
  ASSERT_GE(t.size(), 1u);
  EXPECT_LE(t.size(), 300u);
  // Oldest first (a late timer may land two steps in one second).
  for (size_t i = 1; i < t.size(); ++i) EXPECT_GE(t[i].get<int64_t>(), t[i - 1].get<int64_t>());
  for (const auto& [name, values] : j.at("series").items())
    EXPECT_EQ(values.size(), t.size()) << name;
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_LE(std::abs(now - t.back().get<int64_t>()), 30);
  // minutes=1 covers at most 60 one-second steps.
  const auto one = api.call(read, "GET", "/metrics/history?minutes=1").json();
  EXPECT_LE(one.at("t").size(), 60u);

  for (const char* q : {"?minutes=0", "?minutes=1441", "?minutes=x", "?minute=5"})
    EXPECT_EQ(api.call(read, "GET", std::string("/metrics/history") + q).status, 400) << q;
  // The server's counters, not one customer's.
  const std::string scoped = api.token("reseller", "read", "cust-a");
  EXPECT_EQ(api.call(scoped, "GET", "/metrics/history").status, 403);
  EXPECT_EQ(api.call("", "GET", "/metrics/history").status, 401);
}

TEST(ApiWeb, OverviewCountsTheFleetOrTheTokensTag) {
  ApiServer api("nbiweboverview", web_ini("", "overview_refresh = 1s\n"));
  ASSERT_TRUE(api.started()) << api.luacs().log();
  add_device(api, "A1", "{cust-a,gold}", "hAP ax2", "7.15");
  add_device(api, "A2", "{cust-a,pending}", "hAP ax2", "7.16");
  add_device(api, "A3", "{cust-a}", "RB5009", "7.15", "now() - interval '2 days'");
  add_device(api, "B1", "{pending}", "hAP ax2", "7.14", "now() - interval '1 hour'");
  add_device(api, "B2", "{}", "RB5009", "7.14", "now() - interval '30 days'");
  api.pg().query("INSERT INTO faults (device_id, source) VALUES ('A1', 'cwmp.9005')");
  api.pg().query("INSERT INTO faults (device_id, source) VALUES ('A1', 'task')");
  api.pg().query("INSERT INTO faults (device_id, source) VALUES ('B2', 'task')");
  // Many software versions under one tag: the top 15 and the rest.
  for (int i = 0; i < 18; ++i)
    add_device(api, "M" + std::to_string(i), "{many}", "hAP", "6." + std::to_string(i % 17));

  const std::string read = api.token("noc", "read");
  const std::string scoped = api.token("reseller", "read", "cust-a");

  // Fleet-wide: computed ahead at start (an empty fleet then), recomputed
  // every overview_refresh.
  nlohmann::json all;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto r = api.call(read, "GET", "/overview");
    ASSERT_EQ(r.status, 200) << r.body;
    all = r.json();
    if (all.value("devices", 0) == 23) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(all.value("devices", 0), 23) << all;
  EXPECT_EQ(all.value("online", 0), 20) << all;  // informed in [nbi] online_window (15 min)
  EXPECT_EQ(all.value("informed_24h", 0), 21) << all;
  EXPECT_EQ(all.value("pending", 0), 2) << all;
  EXPECT_EQ(all.value("faulty", 0), 2) << all;
  EXPECT_EQ(all.value("at", "").size(), 24u) << all;
  const nlohmann::json models = {{{"value", "hAP"}, {"count", 18}},
                                 {{"value", "hAP ax2"}, {"count", 3}},
                                 {{"value", "RB5009"}, {"count", 2}}};
  EXPECT_EQ(all.at("by_model"), models) << all;
  const auto& tags = all.at("by_tag");
  ASSERT_GE(tags.size(), 3u) << all;
  EXPECT_EQ(tags[0], (nlohmann::json{{"value", "many"}, {"count", 18}}));
  EXPECT_EQ(tags[1], (nlohmann::json{{"value", "cust-a"}, {"count", 3}}));
  EXPECT_EQ(tags[2], (nlohmann::json{{"value", "pending"}, {"count", 2}}));

  // A tag-scoped token sees its tag's devices only (its first request
  // waits for the computation).
  const auto a = api.call(scoped, "GET", "/overview");
  ASSERT_EQ(a.status, 200) << a.body;
  const auto sa = a.json();
  EXPECT_EQ(sa.value("devices", 0), 3) << sa;
  EXPECT_EQ(sa.value("online", 0), 2) << sa;
  EXPECT_EQ(sa.value("informed_24h", 0), 2) << sa;
  EXPECT_EQ(sa.value("pending", 0), 1) << sa;
  EXPECT_EQ(sa.value("faulty", 0), 1) << sa;
  const nlohmann::json sa_models = {{{"value", "hAP ax2"}, {"count", 2}},
                                    {{"value", "RB5009"}, {"count", 1}}};
  EXPECT_EQ(sa.at("by_model"), sa_models) << sa;
  const nlohmann::json sa_sw = {{{"value", "7.15"}, {"count", 2}},
                                {{"value", "7.16"}, {"count", 1}}};
  EXPECT_EQ(sa.at("by_software"), sa_sw) << sa;
  const nlohmann::json sa_tags = {{{"value", "cust-a"}, {"count", 3}},
                                  {{"value", "gold"}, {"count", 1}},
                                  {{"value", "pending"}, {"count", 1}}};
  EXPECT_EQ(sa.at("by_tag"), sa_tags) << sa;

  // 17 versions among 18 devices: 15 shown, the rest summed.
  const std::string many = api.token("many", "read", "many");
  const auto m = api.call(many, "GET", "/overview").json();
  const auto& sw = m.at("by_software");
  ASSERT_EQ(sw.size(), 16u) << m;
  EXPECT_EQ(sw[0], (nlohmann::json{{"value", "6.0"}, {"count", 2}})) << m;
  int64_t shown = 0;
  for (size_t i = 0; i < 15; ++i) shown += sw[i].value("count", 0);
  EXPECT_EQ(sw[15], (nlohmann::json{{"value", nullptr}, {"count", 18 - shown}, {"other", true}}));
  EXPECT_EQ(18 - shown, 2);

  EXPECT_EQ(api.call("", "GET", "/overview").status, 401);
  EXPECT_EQ(api.call(read, "GET", "/overview?x=1").status, 400);
}
