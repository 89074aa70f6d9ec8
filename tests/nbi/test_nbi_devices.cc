// GET/HEAD /devices (filters, fields, sort, keyset pages, CSV), GET and
// DELETE /devices/{id}, PUT/DELETE /devices/{id}/tags/{tag}: the real
// binary, real PostgreSQL (devices inserted straight into it), real HTTP.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
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

constexpr int kDevices = 300;

// Device i (1..kDevices): every column derived from i, so a test computes
// what a filter must select without asking PostgreSQL.
struct Dev {
  int i;
  std::string id() const {
    char s[16];
    std::snprintf(s, sizeof s, "%05d", i);
    return "OUI" + std::to_string(i % 3) + "-PC" + std::to_string(i % 2) + "-S" + s;
  }
  std::string oui() const { return "OUI" + std::to_string(i % 3); }
  bool online() const { return i % 4 == 0; }
  bool gold() const { return i % 5 == 0; }
  bool isp_a() const { return i % 7 == 0; }
  bool faulty() const { return i % 10 == 0; }
  bool tr181() const { return i % 2 == 0; }
  std::string model() const { return "M" + std::to_string(i % 4); }
  std::string version() const { return "1." + std::to_string(i % 3); }
};

const char* kInsert = R"sql(
INSERT INTO devices (id, oui, product_class, serial_number, manufacturer, data_model_root,
                     first_seen, last_inform, tags, parameters)
SELECT 'OUI' || (i % 3) || '-PC' || (i % 2) || '-S' || lpad(i::text, 5, '0'),
       'OUI' || (i % 3), 'PC' || (i % 2), 'S' || lpad(i::text, 5, '0'), 'Acme', r,
       timestamptz '2026-01-01T00:00:00Z' + i * interval '1 minute',
       CASE WHEN i % 4 = 0 THEN now() - interval '1 minute'
            ELSE timestamptz '2026-06-01T00:00:00Z' + (i / 3) * interval '1 hour' END,
       array_remove(ARRAY[CASE WHEN i % 5 = 0 THEN 'gold' END,
                          CASE WHEN i % 7 = 0 THEN 'isp-a' END], NULL),
       jsonb_build_object(r || '.DeviceInfo.ModelName', jsonb_build_array('M' || (i % 4), 'xsd:string', 1767225600),
                          r || '.DeviceInfo.SoftwareVersion', jsonb_build_array('1.' || (i % 3), 'xsd:string', 1767225600),
                          'Device.X_Test.Value', jsonb_build_array('v' || i, 'xsd:string', 1767225600))
FROM (SELECT i, CASE WHEN i % 2 = 0 THEN 'Device' ELSE 'InternetGatewayDevice' END AS r
      FROM generate_series(1, $1::int) i) s
)sql";

void fill(ApiServer& api) {
  api.pg().query(kInsert, {std::to_string(kDevices)});
  api.pg().query(
      "INSERT INTO faults (device_id, source, code, message)"
      " SELECT id, 'cwmp.9002', 9002, 'internal' FROM devices WHERE serial_number LIKE '%0'");
}

std::vector<std::string> expected(const std::function<bool(const Dev&)>& pred) {
  std::vector<std::string> out;
  for (int i = 1; i <= kDevices; ++i)
    if (pred(Dev{i})) out.push_back(Dev{i}.id());
  std::sort(out.begin(), out.end());
  return out;
}

// Every page of a listing, in order; fails on a duplicate id.
std::vector<nlohmann::json> walk(ApiServer& api, const std::string& token,
                                 const std::string& query) {
  std::vector<nlohmann::json> out;
  std::set<std::string> seen;
  std::string after;
  for (int page = 0; page < 1000; ++page) {
    const auto r =
        api.call(token, "GET",
                 "/devices?" + query + (after.empty() ? "" : "&after=" + test::url_escape(after)));
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    if (r.status != 200) break;
    const auto j = r.json();
    for (const auto& d : j.at("devices")) {
      out.push_back(d);
      if (d.contains("id")) {
        EXPECT_TRUE(seen.insert(d["id"].get<std::string>()).second) << d;
      }
    }
    if (j.at("next").is_null()) break;
    after = j["next"].get<std::string>();
  }
  return out;
}

std::vector<std::string> ids(const std::vector<nlohmann::json>& devs) {
  std::vector<std::string> out;
  for (const auto& d : devs) out.push_back(d.at("id").get<std::string>());
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string tags_of(ApiServer& api, const std::string& id) {
  return api.pg().value("SELECT tags::text FROM devices WHERE id = $1", {id});
}

}  // namespace

TEST(ApiDevices, EachFilterSelectsWhatItSays) {
  ApiServer api("nbidevfilter");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  fill(api);
  const std::string t = api.token("noc", "read");
  auto check = [&](const std::string& q, const std::function<bool(const Dev&)>& pred) {
    EXPECT_EQ(sorted(ids(walk(api, t, q + "&limit=37"))), expected(pred)) << q;
  };
  check("tag=gold", [](const Dev& d) { return d.gold(); });
  check("tag=gold&tag=isp-a", [](const Dev& d) { return d.gold() && d.isp_a(); });
  check("not_tag=gold", [](const Dev& d) { return !d.gold(); });
  check("id_prefix=OUI1-PC0-", [](const Dev& d) { return d.i % 3 == 1 && d.i % 2 == 0; });
  check("oui=OUI2", [](const Dev& d) { return d.i % 3 == 2; });
  check("product_class=PC1", [](const Dev& d) { return d.i % 2 == 1; });
  check("model=M1", [](const Dev& d) { return d.model() == "M1"; });  // IGD devices
  check("model=M2", [](const Dev& d) { return d.model() == "M2"; });  // Device devices
  check("software_version=1.2", [](const Dev& d) { return d.version() == "1.2"; });
  check("online=true", [](const Dev& d) { return d.online(); });
  check("online=false", [](const Dev& d) { return !d.online(); });
  check("faulty=true", [](const Dev& d) { return d.faulty(); });
  check("faulty=false&oui=OUI0", [](const Dev& d) { return !d.faulty() && d.i % 3 == 0; });
  // Hours from 2026-06-01: device i informed at hour i/3 (the offline ones).
  check("informed_before=2026-06-01T10:00:00Z",
        [](const Dev& d) { return !d.online() && d.i / 3 < 10; });
  check("informed_after=2026-06-04T23:00:00%2B00:00&online=false",
        [](const Dev& d) { return !d.online() && d.i / 3 > 95; });
  check("param.Device.X_Test.Value=v42", [](const Dev& d) { return d.i == 42; });
  check("param.Device.X_Test.Value=v4*",
        [](const Dev& d) { return std::to_string(d.i).starts_with("4"); });
  check("param.Device.DeviceInfo.ModelName=*", [](const Dev& d) { return d.tr181(); });
  check("param.Device.X_Test.Value=v_*", [](const Dev&) { return false; });  // '_' is literal
  check("param.Device.X_Test.Value=v%25*", [](const Dev&) { return false; });

  // Bad filters: 400 naming the problem.
  auto bad = [&](const std::string& q, const std::string& needle) {
    const auto r = api.call(t, "GET", "/devices?" + q);
    EXPECT_EQ(r.status, 400) << q;
    EXPECT_NE(r.json().value("detail", "").find(needle), std::string::npos) << q << ": " << r.body;
  };
  bad("colour=red&tag=x", "'colour'");
  bad("online=maybe", "online");
  bad("informed_after=yesterday", "RFC 3339");
  bad("limit=0", "limit");
  bad("limit=10001", "limit");
  bad("limit=abc", "limit");
  bad("sort=serial_number", "sort");
  bad("fields=id,password", "'password'");
  bad("after=!!!", "cursor");
  EXPECT_EQ(api.call(t, "HEAD", "/devices?colour=red").status, 400);
}

TEST(ApiDevices, FieldsSortAndPagesWalkEverythingOnce) {
  ApiServer api("nbidevpages");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  fill(api);
  const std::string t = api.token("noc", "read");

  // Default: every summary column, sorted by id, 100 a page.
  const auto first = api.call(t, "GET", "/devices");
  ASSERT_EQ(first.status, 200) << first.body;
  const auto j = first.json();
  ASSERT_EQ(j["devices"].size(), 100u);
  EXPECT_TRUE(j["next"].is_string());
  const auto& d0 = j["devices"][0];
  EXPECT_EQ(d0["id"], Dev{6}.id());  // OUI0-PC0-S00006 sorts first
  EXPECT_EQ(d0["first_seen"], "2026-01-01T00:06:00Z");
  EXPECT_TRUE(d0["last_boot"].is_null());
  EXPECT_TRUE(d0["tags"].is_array());
  EXPECT_FALSE(d0.contains("parameters"));

  // Projection, a parameter among the fields.
  const auto p = api.call(
      t, "GET", "/devices?fields=id,tags,param.Device.X_Test.Value&id_prefix=OUI0-PC1-S00015");
  ASSERT_EQ(p.status, 200) << p.body;
  const auto pd = p.json()["devices"];
  ASSERT_EQ(pd.size(), 1u);
  EXPECT_EQ(
      pd[0],
      nlohmann::json::parse(
          R"({"id": "OUI0-PC1-S00015", "tags": ["gold"], "param.Device.X_Test.Value": "v15"})"));

  // Every sort, both directions, walked in small pages: all devices once,
  // in order (ties broken by id).
  for (const std::string sort :
       {"id", "-id", "last_inform", "-last_inform", "first_seen", "-first_seen"}) {
    const auto all = walk(api, t, "sort=" + sort + "&limit=7&fields=id,last_inform,first_seen");
    ASSERT_EQ(all.size(), static_cast<size_t>(kDevices)) << sort;
    const bool desc = sort[0] == '-';
    const std::string col = desc ? sort.substr(1) : sort;
    for (size_t k = 1; k < all.size(); ++k) {
      auto key = [&](const nlohmann::json& d) {
        return std::make_pair(col == "id" ? std::string() : d[col].get<std::string>(),
                              d["id"].get<std::string>());
      };
      if (desc) {
        EXPECT_GT(key(all[k - 1]), key(all[k])) << sort << " at " << k;
      } else {
        EXPECT_LT(key(all[k - 1]), key(all[k])) << sort << " at " << k;
      }
    }
  }
  // A cursor of one sort is refused under another.
  const auto page = api.call(t, "GET", "/devices?sort=last_inform&limit=5").json();
  const auto other = api.call(
      t, "GET", "/devices?sort=id&after=" + test::url_escape(page["next"].get<std::string>()));
  EXPECT_EQ(other.status, 400) << other.body;

  // The maximal limit takes everything in one page.
  const auto big = api.call(t, "GET", "/devices?limit=10000&fields=id").json();
  EXPECT_EQ(big["devices"].size(), static_cast<size_t>(kDevices));
  EXPECT_TRUE(big["next"].is_null());

  // HEAD: the count of the whole selection, no body.
  const auto head = api.call(t, "HEAD", "/devices?tag=gold&limit=1");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("X-Total-Count"), std::to_string(kDevices / 5));
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(api.call(t, "HEAD", "/devices").header("X-Total-Count"), std::to_string(kDevices));
}

TEST(ApiDevices, CsvStreamsTheWholeSelectionQuoted) {
  ApiServer api("nbidevcsv");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  fill(api);
  // More than two export pages of one tag.
  api.pg().query(
      "INSERT INTO devices (id, first_seen, last_inform, tags) SELECT 'bulk-' || lpad(i::text, 6, "
      "'0'),"
      " now(), now(), '{bulk}' FROM generate_series(1, 12001) i");
  api.pg().query("UPDATE devices SET manufacturer = $1 WHERE id = $2",
                 {"Acme, \"Inc\"\nLtd", Dev{15}.id()});
  const std::string t = api.token("noc", "read");

  const auto r = api.call(t, "GET", "/devices?tag=bulk&limit=3", "", {{"Accept", "text/csv"}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "text/csv; charset=utf-8");
  EXPECT_TRUE(r.chunked);
  std::vector<std::string> lines;
  for (size_t at = 0; at < r.body.size();) {
    const auto end = r.body.find("\r\n", at);
    ASSERT_NE(end, std::string::npos) << "every line ends with CRLF";
    lines.push_back(r.body.substr(at, end - at));
    at = end + 2;
  }
  ASSERT_EQ(lines.size(), 12002u);
  EXPECT_EQ(lines[0], "id,oui,product_class,serial_number,last_inform,tags");
  EXPECT_EQ(lines[1].substr(0, 16), "bulk-000001,,,,2");
  EXPECT_TRUE(lines[1].ends_with(",\"[\"\"bulk\"\"]\"")) << lines[1];
  for (size_t k = 2; k < lines.size(); ++k) ASSERT_LT(lines[k - 1], lines[k]);

  const auto q =
      api.call(t, "GET",
               "/devices?fields=id,manufacturer,param.Device.X_Test.Value&id_prefix=OUI0-PC1-S0001",
               "", {{"Accept", "text/csv"}});
  ASSERT_EQ(q.status, 200);
  EXPECT_EQ(q.body,
            "id,manufacturer,param.Device.X_Test.Value\r\n"
            "OUI0-PC1-S00015,\"Acme, \"\"Inc\"\"\nLtd\",v15\r\n");
  // An empty selection is a header alone; a bad request is still a JSON 400.
  EXPECT_EQ(api.call(t, "GET", "/devices?tag=none", "", {{"Accept", "text/csv"}}).body,
            "id,oui,product_class,serial_number,last_inform,tags\r\n");
  EXPECT_EQ(api.call(t, "GET", "/devices?fields=x", "", {{"Accept", "text/csv"}}).status, 400);
}

TEST(ApiDevices, OneDeviceWithItsParametersFaultsTasksAndSessions) {
  ApiServer api("nbidevone");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  fill(api);
  const std::string id = Dev{20}.id();
  api.pg().query("INSERT INTO tasks (device_id, name) VALUES ($1, 'reboot')", {id});
  api.pg().query("INSERT INTO tasks (device_id, name, state) VALUES ($1, 'old', 'done')", {id});
  api.pg().query(
      "INSERT INTO session_log (device_id, at, summary) SELECT $1, now() - i * interval '1 minute',"
      " jsonb_build_object('n', i) FROM generate_series(1, 25) i",
      {id});
  const std::string t = api.token("noc", "read");
  const auto r = api.call(t, "GET", "/devices/" + id);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto j = r.json();
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["oui"], "OUI2");
  EXPECT_EQ(j["online"], true);
  EXPECT_EQ(j["tags"], nlohmann::json::array({"gold"}));
  EXPECT_EQ(j["parameters"].size(), 3u);
  EXPECT_EQ(j["parameters"]["Device.DeviceInfo.ModelName"],
            nlohmann::json::parse(
                R"({"value": "M0", "type": "xsd:string", "read_at": "2026-01-01T00:00:00Z"})"));
  ASSERT_EQ(j["faults"].size(), 1u);
  EXPECT_EQ(j["faults"][0]["code"], 9002);
  ASSERT_EQ(j["tasks"].size(), 1u);
  EXPECT_EQ(j["tasks"][0]["name"], "reboot");
  ASSERT_EQ(j["sessions"].size(), 20u);
  EXPECT_EQ(j["sessions"][0]["summary"]["n"], 1);

  const auto some = api.call(t, "GET", "/devices/" + id + "?params=Device.DeviceInfo.").json();
  EXPECT_EQ(some["parameters"].size(), 2u);
  EXPECT_EQ(api.call(t, "GET", "/devices/" + id + "?params=Nothing.").json()["parameters"],
            nlohmann::json::object());
  EXPECT_EQ(api.call(t, "GET", "/devices/nope").status, 404);
  EXPECT_EQ(api.call(t, "GET", "/devices/" + id + "?colour=red").status, 400);
}

TEST(ApiDevices, InjectionStringsAreOnlyValues) {
  ApiServer api("nbidevinject");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  fill(api);
  const std::string t = api.token("ops", "admin");
  const std::vector<std::string> evil = {"' OR 1=1 --", "'); DROP TABLE devices; --",
                                         "x\\' OR ''='", "%' OR '1'='1"};
  const std::vector<std::string> filters = {"tag",
                                            "not_tag",
                                            "id_prefix",
                                            "oui",
                                            "product_class",
                                            "model",
                                            "software_version",
                                            "informed_before",
                                            "informed_after",
                                            "online",
                                            "faulty",
                                            "param.Device.X_Test.Value",
                                            "param.' OR 1=1 --"};
  for (const auto& e : evil) {
    for (const auto& f : filters) {
      const auto r = api.call(
          t, "GET", "/devices?fields=id&" + test::url_escape(f) + "=" + test::url_escape(e));
      if (f == "not_tag") {
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.json()["devices"].size(), 100u) << "not_tag of an unknown tag is everything";
        continue;
      }
      EXPECT_TRUE(r.status == 400 || (r.status == 200 && r.json()["devices"].empty()))
          << f << "=" << e << ": " << r.status << " " << r.body;
      EXPECT_EQ(api.call(t, "HEAD", "/devices?" + test::url_escape(f) + "=" + test::url_escape(e))
                    .header("X-Total-Count"),
                r.status == 200 ? "0" : "");
    }
    EXPECT_EQ(api.call(t, "GET", "/devices?fields=" + test::url_escape("id," + e)).status, 400);
    EXPECT_EQ(api.call(t, "GET", "/devices?sort=" + test::url_escape(e)).status, 400);
    EXPECT_EQ(api.call(t, "GET", "/devices?after=" + test::url_escape(e)).status, 400);
    EXPECT_EQ(api.call(t, "GET", "/devices/" + test::url_escape(e)).status, 404);
    EXPECT_EQ(api.call(t, "DELETE", "/devices/" + test::url_escape(e)).status, 404);
    EXPECT_EQ(api.call(t, "PUT", "/devices/" + test::url_escape(e) + "/tags/x").status, 404);
    EXPECT_EQ(api.call(t, "PUT",
                       "/devices/" + test::url_escape(Dev{1}.id()) + "/tags/" + test::url_escape(e))
                  .status,
              204);
    EXPECT_EQ(
        api.call(t, "GET",
                 "/devices/" + test::url_escape(Dev{1}.id()) + "?params=" + test::url_escape(e))
            .status,
        200);
  }
  // A cursor that decodes to JSON with an injection in it.
  const std::string forged =
      "eyJzIjoiaWQiLCJpZCI6IicgT1IgMT0xIC0tIn0";  // {"s":"id","id":"' OR 1=1 --"}
  EXPECT_EQ(api.call(t, "GET", "/devices?after=" + forged).status, 200);
  // Invalid UTF-8 is refused, not a server error.
  EXPECT_EQ(api.call(t, "GET", "/devices?oui=%FF%FE").status, 400);
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM devices"), std::to_string(kDevices));
  EXPECT_EQ(api.pg().value("SELECT tags::text FROM devices WHERE id = $1", {Dev{1}.id()}),
            R"({"' OR 1=1 --","'); DROP TABLE devices; --","x\\' OR ''='","%' OR '1'='1"})");
}

TEST(ApiDevices, TagsAndScopedTokens) {
  ApiServer api("nbidevtags");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  fill(api);
  const std::string op = api.token("ops", "operate");
  const std::string rd = api.token("noc", "read");
  const std::string scoped = api.token("reseller", "operate", "isp-a");
  const std::string in = Dev{7}.id(), out = Dev{5}.id();

  EXPECT_EQ(api.call(op, "PUT", "/devices/" + in + "/tags/vip").status, 204);
  EXPECT_EQ(api.call(op, "PUT", "/devices/" + in + "/tags/vip").status, 204);  // idempotent
  EXPECT_EQ(tags_of(api, in), "{isp-a,vip}");
  EXPECT_EQ(api.call(op, "DELETE", "/devices/" + in + "/tags/vip").status, 204);
  EXPECT_EQ(api.call(op, "DELETE", "/devices/" + in + "/tags/vip").status, 204);
  EXPECT_EQ(tags_of(api, in), "{isp-a}");
  EXPECT_EQ(api.call(op, "PUT", "/devices/nope/tags/vip").status, 404);
  EXPECT_EQ(api.call(op, "PUT", "/devices/" + in + "/tags/" + std::string(129, 'a')).status, 400);
  EXPECT_EQ(api.call(op, "PUT", "/devices/" + in + "/tags/a%09b").status, 400);
  EXPECT_EQ(api.call(rd, "PUT", "/devices/" + in + "/tags/vip").status, 403);
  EXPECT_EQ(api.call(op, "DELETE", "/devices/" + in).status, 403);  // admin only

  // Scoped to isp-a: only those devices, everywhere.
  const auto mine = expected([](const Dev& d) { return d.isp_a(); });
  EXPECT_EQ(sorted(ids(walk(api, scoped, "fields=id&limit=10"))), mine);
  EXPECT_EQ(sorted(ids(walk(api, scoped, "fields=id&tag=gold"))),
            expected([](const Dev& d) { return d.isp_a() && d.gold(); }));
  EXPECT_EQ(api.call(scoped, "HEAD", "/devices").header("X-Total-Count"),
            std::to_string(mine.size()));
  const auto csv = api.call(scoped, "GET", "/devices?fields=id", "", {{"Accept", "text/csv"}});
  EXPECT_EQ(std::count(csv.body.begin(), csv.body.end(), '\n'), static_cast<long>(mine.size() + 1));
  EXPECT_EQ(api.call(scoped, "GET", "/devices/" + in).status, 200);
  EXPECT_EQ(api.call(scoped, "GET", "/devices/" + out).status, 403);
  EXPECT_EQ(api.call(scoped, "PUT", "/devices/" + out + "/tags/vip").status, 403);
  EXPECT_EQ(api.call(scoped, "PUT", "/devices/" + in + "/tags/vip").status, 204);
  EXPECT_EQ(api.call(scoped, "DELETE", "/devices/" + in + "/tags/isp-a").status, 403);
  EXPECT_EQ(api.call(scoped, "PUT", "/devices/" + out + "/tags/isp-a").status, 403);
  EXPECT_EQ(tags_of(api, in), "{isp-a,vip}");
  EXPECT_EQ(tags_of(api, out), "{gold}");
}

TEST(ApiDevices, ATagReachesACachedDevicesNextSession) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("luacs-nbi-devices-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "10-vip.lua") << "function on_inform(dev, inform)\n"
                                       "  if dev:has_tag('vip') then dev:tag('vip_seen') end\n"
                                       "end\n";
  ApiServer api("nbidevcache", "[policy]\ndir = " + dir.string());
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string id = "E48D8C-hAP%20lite-C1", url = "/devices/E48D8C-hAP%2520lite-C1";
  auto session = [&] {
    CpeClient c(api.cwmp_port());
    ASSERT_EQ(c.post(inform_xml("C1")).status, 200);
    ASSERT_EQ(c.post("").status, 204);
  };
  auto eventually = [&](const std::string& want) {
    for (int k = 0; k < 100 && tags_of(api, id) != want; ++k) std::this_thread::sleep_for(50ms);
    return tags_of(api, id);
  };
  session();  // the device is now cached by the server
  EXPECT_EQ(eventually("{}"), "{}");
  const std::string op = api.token("ops", "operate");
  EXPECT_EQ(api.call(op, "PUT", url + "/tags/vip").status, 204);
  // The notification reaches the server's store a moment after the commit.
  std::this_thread::sleep_for(200ms);
  session();
  // The policy saw the tag (the cached copy was dropped), and the session's
  // write-behind kept it.
  EXPECT_EQ(eventually("{vip,vip_seen}"), "{vip,vip_seen}");
  EXPECT_EQ(api.call(op, "DELETE", url + "/tags/vip").status, 204);
  std::this_thread::sleep_for(200ms);
  session();
  EXPECT_EQ(eventually("{vip_seen}"), "{vip_seen}");
  fs::remove_all(dir);
}

TEST(ApiDevices, DeleteRemovesEverythingButNotDuringASession) {
  ApiServer api("nbidevdelete");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  fill(api);
  const std::string admin = api.token("ops", "admin");
  const std::string id = Dev{10}.id();
  api.pg().query("INSERT INTO tasks (device_id, name) VALUES ($1, 'reboot')", {id});
  api.pg().query("INSERT INTO transfers (device_id) VALUES ($1)", {id});
  api.pg().query("INSERT INTO session_log (device_id, at) VALUES ($1, now())", {id});
  api.pg().query(
      "INSERT INTO files (name, bytes, size, sha256, device_id) VALUES ('f', 'x', 1, 'h', $1)",
      {id});
  EXPECT_EQ(api.call(admin, "DELETE", "/devices/" + id).status, 204);
  for (const std::string table :
       {"devices WHERE id", "tasks WHERE device_id", "faults WHERE device_id",
        "transfers WHERE device_id", "session_log WHERE device_id", "files WHERE device_id"})
    EXPECT_EQ(api.pg().value("SELECT count(*) FROM " + table + " = $1", {id}), "0") << table;
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM devices"), std::to_string(kDevices - 1));
  EXPECT_EQ(api.call(admin, "DELETE", "/devices/" + id).status, 404);
  const std::string scoped = api.token("reseller", "admin", "isp-a");
  EXPECT_EQ(api.call(scoped, "DELETE", "/devices/" + Dev{1}.id()).status, 403);
  EXPECT_EQ(api.call(scoped, "DELETE", "/devices/" + Dev{7}.id()).status, 204);

  // A device in a CWMP session: 409 until the session ended.
  CpeClient c(api.cwmp_port());
  ASSERT_EQ(c.post(inform_xml("D1")).status, 200);
  const std::string url = "/devices/E48D8C-hAP%2520lite-D1";
  const auto busy = api.call(admin, "DELETE", url);
  EXPECT_EQ(busy.status, 409) << busy.body;
  ASSERT_EQ(c.post("").status, 204);
  int status = 0;
  for (int k = 0; k < 100 && status != 204; ++k) {
    status = api.call(admin, "DELETE", url).status;
    if (status != 204) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 204);
}
