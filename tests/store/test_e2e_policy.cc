// The Lua policy end to end: the real luacs binary with its PostgreSQL
// store (the private cluster started by the ctest fixture), real CWMP
// sessions over loopback HTTP, the real file server, and the `luacs check`,
// `luacs reload` and `luacs status` command lines run as subprocesses.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/luacs_process.h"
#include "support/pg.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::CpeClient;
using test::HttpResponse;
using test::inform_xml;
using test::LuacsProcess;
using test::message_xml;
using test::parse_ok;
using test::Pg;
using test::TempDatabase;

#ifndef LUACS_LOADGEN
#define LUACS_LOADGEN ""  // built without bench/: the load test skips
#endif

namespace {

namespace fs = std::filesystem;

const std::string kDevice = "E48D8C-hAP%20lite-";

// ---- files and folders --------------------------------------------------------

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Written in full, then renamed into place: a reload never reads half a file.
void write_file(const fs::path& p, const std::string& text) {
  fs::path tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
  }
  fs::rename(tmp, p);
}

// A folder of its own under the temp directory, removed at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static std::atomic<int> n{0};
    path_ = fs::temp_directory_path() / ("luacs-e2e-policy-" + std::to_string(getpid()) + "-" +
                                         std::to_string(++n) + "-" + tag);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // Writes (replaces) one policy file; its full path.
  std::string put(const std::string& name, const std::string& text) const {
    write_file(path_ / name, text);
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

// ---- the luacs command line -----------------------------------------------------

struct Cli {
  int exit_code = -1;  // -1: killed (signal or time limit)
  std::string out, err;
};

// Runs the luacs binary with `args`; stdout and stderr kept apart.
Cli run_luacs(const std::vector<std::string>& args, std::chrono::seconds limit = 30s) {
  static std::atomic<int> n{0};
  fs::path base = fs::temp_directory_path() /
                  ("luacs-e2e-policy-cli-" + std::to_string(getpid()) + "-" + std::to_string(++n));
  fs::path out_path = base.string() + ".out", err_path = base.string() + ".err";
  pid_t pid = fork();
  if (pid == 0) {
    FILE* o = std::fopen(out_path.c_str(), "w");
    FILE* e = std::fopen(err_path.c_str(), "w");
    if (!o || !e) _exit(126);
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    std::vector<std::string> all = {LUACS_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(LUACS_BINARY, argv.data());
    _exit(127);
  }
  Cli r;
  int st = 0;
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  std::error_code ec;
  fs::remove(out_path, ec);
  fs::remove(err_path, ec);
  return r;
}

std::string show(const Cli& c) {
  return "exit " + std::to_string(c.exit_code) + "\n--- stdout\n" + c.out + "--- stderr\n" + c.err;
}

// ---- configuration ----------------------------------------------------------

std::string ini(const std::string& policy_dir, const std::string& extra = "") {
  return "[cwmp]\nlisten = 127.0.0.1:0\nworkers = 2\n[store]\nsql_dir = " +
         std::string(LUACS_SOURCE_DIR) +
         "/sql\nflush_interval = 5ms\n[policy]\ndir = " + policy_dir + "\n" + extra +
         "[log]\nlevel = info\n";
}

// The config as the server sees it (file server on port 0, a control
// socket of its own), written where `luacs reload -c` can read it too.
struct Config {
  std::string text, path;
  explicit Config(const std::string& ini_text)
      : text(test::with_test_defaults(ini_text)), path(test::temp_file("policy.ini", text)) {}
};

// The file server's port, from "... files on 127.0.0.1:PORT".
uint16_t files_port(LuacsProcess& luacs) {
  const std::string marker = "files on 127.0.0.1:";
  std::string log = luacs.log();
  auto at = log.find(marker);
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::atoi(log.c_str() + at + marker.size()));
}

// ---- polling the database ------------------------------------------------------

// Polls `sql` until it returns `want`; the last value read.
std::string wait_value(Pg& pg, const std::string& sql, const std::vector<std::string>& params,
                       const std::string& want, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string v;
  for (;;) {
    try {
      v = pg.value(sql, params);
    } catch (const std::exception& e) {
      v = std::string("<error ") + e.what() + ">";
    }
    if (v == want || std::chrono::steady_clock::now() > deadline) return v;
    std::this_thread::sleep_for(20ms);
  }
}

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

std::set<std::string> tags_of(Pg& pg, const std::string& device) {
  std::set<std::string> out;
  for (const auto& row : pg.query("SELECT unnest(tags) FROM devices WHERE id = $1", {device}))
    out.insert(row[0]);
  return out;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ",") + x;
  return out;
}

// ---- a CPE session -------------------------------------------------------------

// What one scripted CPE session saw of the ACS.
struct Session {
  bool inform_ok = false;
  int final_status = 0;               // 204 when the ACS ended the session
  std::vector<std::string> requests;  // method names, in order
  std::vector<soap::Download> downloads;
  std::vector<std::vector<std::string>> gets;  // GetParameterValues names
  std::string failure;                         // why it stopped early
};

// A MikroTik hAP lite Inform, shaped like the corpus' RB2011 one.
std::string mikrotik_inform(const std::string& serial,
                            const std::vector<soap::EventStruct>& events) {
  return inform_xml(serial, "E48D8C", "hAP lite", events,
                    {{"Device.RootDataModelVersion", "2.11", "string"},
                     {"Device.DeviceInfo.HardwareVersion", "v1.0", "string"},
                     {"Device.DeviceInfo.ProvisioningCode", "", "string"},
                     {"Device.ManagementServer.ConnectionRequestURL",
                      "http://192.0.2.20:7547/0a1b2c3d4e5f", "string"},
                     {"Device.ManagementServer.AliasBasedAddressing", "0", "boolean"}});
}

// Values the simulated device holds (everything else reads as "").
const std::map<std::string, std::string> kValues = {
    {"Device.DeviceInfo.ModelName", "hAP lite"},
    {"Device.DeviceInfo.SoftwareVersion", "7.16"},
    {"Device.DeviceInfo.UpTime", "4711"},
    {"Device.Ethernet.Interface.1.MACAddress", "4C:5E:0C:12:AB:CD"},
    {"Device.Ethernet.Link.1.MACAddress", "4C:5E:0C:12:AB:CD"},
    {"Device.WiFi.SSID.1.SSID", "MikroTik-12ABCD"},
};

// One session: the Inform, the CPE's own requests (`cpe_requests`, e.g. a
// TransferComplete), the empty POST, then every ACS request answered until
// the ACS ends the session. Downloads are answered with `download_status`.
Session run_session(uint16_t port, const std::string& inform,
                    const std::vector<std::string>& cpe_requests = {}, int download_status = 1) {
  Session s;
  CpeClient c(port);
  if (!c.connected()) {
    s.failure = "cannot connect";
    return s;
  }
  HttpResponse r = c.post(inform);
  if (r.status != 200) {
    s.failure = "Inform answered " + std::to_string(r.status);
    return s;
  }
  if (!std::holds_alternative<soap::InformResponse>(parse_ok(r.body).body)) {
    s.failure = "no InformResponse";
    return s;
  }
  s.inform_ok = true;
  for (const auto& req : cpe_requests) {
    r = c.post(req);
    if (r.status != 200) {
      s.failure = "CPE request answered " + std::to_string(r.status);
      return s;
    }
    s.requests.push_back("<" + std::string(soap::method_name(parse_ok(r.body).body)));
  }
  r = c.post("");
  for (int rounds = 0; r.status == 200 && rounds < 50; ++rounds) {
    soap::Envelope req = parse_ok(r.body);
    std::string id = req.header.id.value_or("");
    s.requests.push_back(std::string(soap::method_name(req.body)));
    if (auto* gpv = std::get_if<soap::GetParameterValues>(&req.body)) {
      s.gets.push_back(gpv->names);
      soap::GetParameterValuesResponse resp;
      for (const auto& n : gpv->names) {
        auto it = kValues.find(n);
        resp.parameters.push_back({n, it == kValues.end() ? "" : it->second, "string"});
      }
      r = c.post(message_xml(resp, id));
    } else if (auto* spv = std::get_if<soap::SetParameterValues>(&req.body)) {
      (void)spv;
      r = c.post(message_xml(soap::SetParameterValuesResponse{0}, id));
    } else if (auto* dl = std::get_if<soap::Download>(&req.body)) {
      s.downloads.push_back(*dl);
      soap::DownloadResponse resp;
      resp.status = download_status;
      r = c.post(message_xml(resp, id));
    } else {
      s.failure = "unexpected ACS request " + std::string(soap::method_name(req.body));
      soap::Fault f;
      f.code = 9000;
      f.string = "Method not supported";
      r = c.post(message_xml(f, id));
    }
  }
  s.final_status = r.status;
  return s;
}

std::string describe(const Session& s) {
  std::string out = "inform_ok=" + std::to_string(s.inform_ok) +
                    " final=" + std::to_string(s.final_status) + " requests:";
  for (const auto& r : s.requests) out += " " + r;
  if (!s.failure.empty()) out += " failure: " + s.failure;
  return out;
}

// ---- the file server --------------------------------------------------------------

struct Url {
  std::string host;
  uint16_t port = 0;
  std::string path;
};

bool parse_http_url(const std::string& url, Url& u) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return false;
  auto slash = url.find('/', scheme.size());
  if (slash == std::string::npos) return false;
  std::string authority = url.substr(scheme.size(), slash - scheme.size());
  auto colon = authority.rfind(':');
  if (colon == std::string::npos) return false;
  u.host = authority.substr(0, colon);
  u.port = static_cast<uint16_t>(std::atoi(authority.c_str() + colon + 1));
  u.path = url.substr(slash);
  return u.port != 0;
}

// GET over a new connection to 127.0.0.1:port, whatever host the URL names.
HttpResponse http_get(uint16_t port, const std::string& path, const std::string& host,
                      const std::vector<std::string>& headers = {}) {
  CpeClient c(port);
  if (!c.connected()) return {};
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  req += "Connection: close\r\n\r\n";
  if (!c.send_raw(req)) return {};
  return c.read_response();
}

// ---- the load generator ----------------------------------------------------------

// The decimal number right after the first `marker` of text; -1 if none.
long long number_after(const std::string& text, const std::string& marker) {
  auto at = text.find(marker);
  if (at == std::string::npos) return -1;
  at += marker.size();
  if (at >= text.size() || !std::isdigit(static_cast<unsigned char>(text[at]))) return -1;
  return std::atoll(text.c_str() + at);
}

// `"key": N` of the load generator's JSON report.
long long json_number(const std::string& json, const std::string& key) {
  return number_after(json, "\"" + key + "\": ");
}

struct Load {
  std::thread thread;
  int status = -1;
  std::string output, json;
  fs::path json_path;
  Load(uint16_t port, const std::string& args) {
    static std::atomic<int> n{0};
    json_path = fs::temp_directory_path() / ("luacs-e2e-policy-load-" + std::to_string(getpid()) +
                                             "-" + std::to_string(++n) + ".json");
    thread = std::thread([this, port, args] {
      std::string cmd = std::string(LUACS_LOADGEN) +
                        " --url http://127.0.0.1:" + std::to_string(port) + "/ --json " +
                        json_path.string() + " " + args + " 2>&1";
      FILE* p = popen(cmd.c_str(), "r");
      if (!p) return;
      char buf[4096];
      size_t got;
      while ((got = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, got);
      int st = pclose(p);
      status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      json = slurp(json_path);
    });
  }
  ~Load() {
    if (thread.joinable()) thread.join();
    std::error_code ec;
    fs::remove(json_path, ec);
  }
  void join() {
    if (thread.joinable()) thread.join();
  }
};

}  // namespace

// 1. The shipped policy: a new MikroTik waits for adoption, the tasks.adopt
// task pushes a .alter script the device can fetch from the file server, and
// its TransferComplete closes the transfer.
TEST(PolicyE2E, DefaultPolicyAdoptsMikrotikThroughAlterScript) {
  TempDatabase db("policy_adopt");
  Pg pg(db.dsn());
  Config cfg(ini(std::string(LUACS_SOURCE_DIR) + "/policies/default"));
  LuacsProcess luacs(cfg.text, {"--store-dsn", db.dsn()});
  ASSERT_TRUE(luacs.started()) << luacs.log();
  const uint16_t fport = files_port(luacs);
  ASSERT_NE(fport, 0) << luacs.log();
  const std::string dev = kDevice + "7DCF08DC745D";

  // Session 1: first contact. The normalise job reads model, MAC and SSID;
  // the adoption job tags the device pending.
  Session s1 = run_session(luacs.port(),
                           mikrotik_inform("7DCF08DC745D", {{"0 BOOTSTRAP", ""}, {"1 BOOT", ""}}));
  ASSERT_EQ(s1.final_status, 204) << describe(s1) << luacs.log();
  EXPECT_TRUE(s1.failure.empty()) << describe(s1);
  EXPECT_EQ(s1.gets.size(), 1u) << describe(s1);
  EXPECT_TRUE(s1.downloads.empty()) << describe(s1);
  EXPECT_TRUE(wait_for([&] { return tags_of(pg, dev).count("pending") == 1; }))
      << join(tags_of(pg, dev)) << luacs.log();
  EXPECT_EQ(tags_of(pg, dev).count("provisioned"), 0u) << join(tags_of(pg, dev));
  EXPECT_EQ(wait_value(pg,
                       "SELECT parameters->'Summary.model'->>0 || '|' || "
                       "(parameters->'Summary.mac'->>0) FROM devices WHERE id = $1",
                       {dev}, "hAP lite|4C:5E:0C:12:AB:CD"),
            "hAP lite|4C:5E:0C:12:AB:CD");

  // The operator's "Adopt": a tasks.adopt row, as the API would queue it.
  std::string task = pg.value(
      "INSERT INTO tasks (device_id, name, args) VALUES ($1, 'tasks.adopt', $2) RETURNING id",
      {dev, R"({"identity": "lab-7"})"});
  std::this_thread::sleep_for(300ms);  // the NOTIFY drops the cached device

  // Session 2: a periodic Inform; the task pushes the .alter script.
  Session s2 = run_session(luacs.port(), mikrotik_inform("7DCF08DC745D", {{"2 PERIODIC", ""}}));
  ASSERT_EQ(s2.final_status, 204) << describe(s2) << luacs.log();
  EXPECT_TRUE(s2.failure.empty()) << describe(s2);
  ASSERT_EQ(s2.downloads.size(), 1u) << describe(s2) << luacs.log();
  const soap::Download dl = s2.downloads[0];
  EXPECT_EQ(dl.file_type, "3 Vendor Configuration File");
  ASSERT_GE(dl.url.size(), 6u);
  EXPECT_EQ(dl.url.substr(dl.url.size() - 6), ".alter") << dl.url;
  EXPECT_EQ(dl.command_key.rfind("alter-", 0), 0u) << dl.command_key;
  const std::string name = dl.url.substr(dl.url.rfind('/') + 1);
  EXPECT_EQ(dl.target_file_name, name) << dl.url;

  // The task is done, its result names the push; the device is provisioned.
  EXPECT_EQ(wait_value(pg, "SELECT state FROM tasks WHERE id = $1", {task}, "done"), "done")
      << pg.value("SELECT coalesce(result::text, '') FROM tasks WHERE id = $1", {task})
      << luacs.log();
  EXPECT_EQ(pg.value("SELECT result->'result'->>'identity' FROM tasks WHERE id = $1", {task}),
            "lab-7");
  EXPECT_EQ(pg.value("SELECT result->'result'->>'command_key' FROM tasks WHERE id = $1", {task}),
            dl.command_key);
  EXPECT_TRUE(wait_for([&] { return tags_of(pg, dev).count("provisioned") == 1; }))
      << join(tags_of(pg, dev));
  EXPECT_EQ(tags_of(pg, dev).count("pending"), 0u) << join(tags_of(pg, dev));

  // The CPE fetches the script. The URL's host is the Host header our CPE
  // sent (acs.test); the file server itself is on 127.0.0.1.
  Url u;
  ASSERT_TRUE(parse_http_url(dl.url, u)) << dl.url;
  EXPECT_EQ(u.host, "acs.test") << dl.url;
  EXPECT_EQ(u.port, fport) << dl.url;
  HttpResponse whole = http_get(u.port, u.path, u.host + ":" + std::to_string(u.port));
  ASSERT_EQ(whole.status, 200) << dl.url << "\n" << whole.body;
  EXPECT_NE(whole.body.find("/system identity set name=\"lab-7\""), std::string::npos)
      << whole.body;
  EXPECT_EQ(whole.body.size(), dl.file_size);
  const std::string etag = whole.header("etag");
  EXPECT_FALSE(etag.empty());
  ASSERT_GE(whole.body.size(), 8u);
  HttpResponse part =
      http_get(u.port, u.path, u.host + ":" + std::to_string(u.port), {"Range: bytes=2-7"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, whole.body.substr(2, 6));
  EXPECT_EQ(part.header("content-range"), "bytes 2-7/" + std::to_string(whole.body.size()));
  EXPECT_EQ(part.header("etag"), etag);
  // A wrong token is refused.
  std::string forged = u.path;
  forged[1] = forged[1] == 'x' ? 'y' : 'x';
  EXPECT_EQ(http_get(u.port, forged, u.host).status / 100, 4) << forged;

  // The files table holds it, tied to the device, the ETag its sha256; the
  // transfer was recorded as sent.
  EXPECT_EQ(wait_value(pg, "SELECT coalesce(device_id, '<none>') FROM files WHERE name = $1",
                       {name}, dev),
            dev);
  EXPECT_EQ("\"" + pg.value("SELECT sha256 FROM files WHERE name = $1", {name}) + "\"", etag);
  EXPECT_EQ(wait_value(pg,
                       "SELECT count(*) FROM transfers WHERE device_id = $1 AND command_key = $2"
                       " AND completed_at IS NULL",
                       {dev, dl.command_key}, "1"),
            "1");
  EXPECT_EQ(pg.value("SELECT url || '|' || file_type || '|' || is_download::int FROM transfers"
                     " WHERE device_id = $1 AND command_key = $2",
                     {dev, dl.command_key}),
            dl.url + "|3 Vendor Configuration File|1");

  // Session 3: the device applied it and says so.
  soap::TransferComplete tc;
  tc.command_key = dl.command_key;
  tc.start_time = "2026-11-21T10:05:00Z";
  tc.complete_time = "2026-11-21T10:05:02Z";
  Session s3 = run_session(luacs.port(),
                           mikrotik_inform("7DCF08DC745D", {{"7 TRANSFER COMPLETE", ""},
                                                            {"M Download", dl.command_key}}),
                           {message_xml(tc, "tc-1")});
  ASSERT_EQ(s3.final_status, 204) << describe(s3) << luacs.log();
  EXPECT_TRUE(s3.failure.empty()) << describe(s3);
  ASSERT_FALSE(s3.requests.empty());
  EXPECT_EQ(s3.requests[0], "<TransferCompleteResponse");
  EXPECT_EQ(pg.value("SELECT count(*) || '|' || max(fault_code) || '|' || max(complete_time) ||"
                     " '|' || bool_and(completed_at IS NOT NULL)::int FROM transfers"
                     " WHERE device_id = $1 AND command_key = $2",
                     {dev, dl.command_key}),
            "1|0|2026-11-21T10:05:02Z|1");
  EXPECT_EQ(tags_of(pg, dev).count("provisioned"), 1u) << join(tags_of(pg, dev));
  EXPECT_EQ(tags_of(pg, dev).count("provision_failed"), 0u) << join(tags_of(pg, dev));
  EXPECT_EQ(pg.value("SELECT count(*) FROM faults WHERE device_id = $1", {dev}), "0")
      << pg.query("SELECT source, message FROM faults WHERE device_id = $1", {dev})[0][1];
  EXPECT_EQ(luacs.stop(), 0) << luacs.log();
  EXPECT_EQ(luacs.count("policy error"), 0u) << luacs.log();

  // The script is kept in PostgreSQL: a restarted luacs (a new file server
  // port) still serves it under the same token, e.g. to a CPE that fetches
  // it late.
  LuacsProcess again(cfg.text, {"--store-dsn", db.dsn()});
  ASSERT_TRUE(again.started()) << again.log();
  HttpResponse after = http_get(files_port(again), u.path, "127.0.0.1");
  EXPECT_EQ(after.status, 200) << after.body << again.log();
  EXPECT_EQ(after.body, whole.body);
  EXPECT_EQ(after.header("etag"), etag);
  EXPECT_EQ(again.stop(), 0) << again.log();
}

// 2. A hook that raises: a fault with source policy and the file:line, and
// the CPE is let go normally.
TEST(PolicyE2E, HookErrorRecordsFaultAndSessionEnds) {
  TempDatabase db("policy_fault");
  Pg pg(db.dsn());
  TempDir dir("broken");
  dir.put("10-broken.lua",
          "function on_inform(dev, inform)\n"
          "  local settings = nil\n"
          "  dev:tag(settings.name)\n"
          "end\n");
  Config cfg(ini(dir.str()));
  LuacsProcess luacs(cfg.text, {"--store-dsn", db.dsn()});
  ASSERT_TRUE(luacs.started()) << luacs.log();
  const std::string dev = kDevice + "F1";

  Session s = run_session(luacs.port(), mikrotik_inform("F1", {{"1 BOOT", ""}}));
  EXPECT_EQ(s.final_status, 204) << describe(s) << luacs.log();
  EXPECT_TRUE(s.requests.empty()) << describe(s);
  EXPECT_EQ(wait_value(pg, "SELECT count(*) FROM faults WHERE device_id = $1 AND source = 'policy'",
                       {dev}, "1"),
            "1")
      << luacs.log();
  auto rows = pg.query(
      "SELECT message, retries, detail->>'hook' FROM faults WHERE device_id = $1 AND source = "
      "'policy'",
      {dev});
  ASSERT_EQ(rows.size(), 1u);
  const std::string where = dir.str() + "/10-broken.lua:3:";
  EXPECT_NE(rows[0][0].find(where), std::string::npos) << rows[0][0];
  EXPECT_NE(rows[0][0].find("on_inform"), std::string::npos) << rows[0][0];
  EXPECT_EQ(rows[0][1], "0");
  EXPECT_EQ(rows[0][2], "on_inform");
  // The log says it too, with the hook, the generation and the device.
  EXPECT_TRUE(wait_for([&] {
    return luacs.count("policy error hook=on_inform generation=1") >= 1;
  })) << luacs.log();
  EXPECT_NE(luacs.log().find(where), std::string::npos) << luacs.log();

  // The device is still known, and a repeat bumps the fault's retries.
  EXPECT_EQ(pg.value("SELECT count(*) FROM devices WHERE id = $1", {dev}), "1");
  Session again = run_session(luacs.port(), mikrotik_inform("F1", {{"2 PERIODIC", ""}}));
  EXPECT_EQ(again.final_status, 204) << describe(again) << luacs.log();
  EXPECT_EQ(wait_value(pg, "SELECT retries FROM faults WHERE device_id = $1 AND source = 'policy'",
                       {dev}, "1"),
            "1");
  EXPECT_EQ(luacs.stop(), 0) << luacs.log();
}

// 3. Reload through the control socket and SIGHUP: new sessions get the new
// policy; a broken one is refused and the running generation keeps serving.
TEST(PolicyE2E, ReloadStatusAndSighup) {
  TempDatabase db("policy_reload");
  Pg pg(db.dsn());
  TempDir dir("reload");
  auto policy = [](const std::string& version) {
    return "-- policy " + version +
           "\n"
           "function on_inform(dev, inform)\n"
           "  dev:tag(\"gen\" .. luacs.generation)\n"
           "  dev:tag(\"" +
           version +
           "\")\n"
           "end\n";
  };
  const std::string file = dir.put("10-gen.lua", policy("v1"));
  Config cfg(ini(dir.str()));
  LuacsProcess luacs(cfg.text, {"--store-dsn", db.dsn()});
  ASSERT_TRUE(luacs.started()) << luacs.log();
  EXPECT_EQ(luacs.count("policy generation 1 loaded from " + dir.str()), 1u) << luacs.log();

  // One session of device `serial`, after which the device has the tags
  // `want` (they are written behind: waited for).
  auto session = [&](const std::string& serial, const std::set<std::string>& want) {
    Session s = run_session(luacs.port(), mikrotik_inform(serial, {{"2 PERIODIC", ""}}));
    EXPECT_EQ(s.final_status, 204) << serial << ": " << describe(s) << luacs.log();
    std::set<std::string> tags;
    wait_for([&] {
      tags = tags_of(pg, kDevice + serial);
      return tags == want;
    });
    EXPECT_EQ(tags, want) << serial;
  };
  session("R1", {"gen1", "v1"});

  // A changed policy: generation 2.
  dir.put("10-gen.lua", policy("v2"));
  Cli r = run_luacs({"reload", "-c", cfg.path});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out.rfind("ok generation 2\n", 0), 0u) << show(r);
  session("R2", {"gen2", "v2"});
  EXPECT_EQ(luacs.count("policy generation 2 loaded from " + dir.str() + " (luacs reload)"), 1u)
      << luacs.log();

  r = run_luacs({"status", "-c", cfg.path});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out.rfind("ok generation 2\n", 0), 0u) << show(r);
  EXPECT_NE(r.out.find("\npolicy " + dir.str() + "\n"), std::string::npos) << show(r);
  EXPECT_NE(r.out.find("\nhooks on_inform\n"), std::string::npos) << show(r);
  // "loads" counts every load, the one at start-up included.
  EXPECT_NE(r.out.find("\nloads 2 failed 0\n"), std::string::npos) << show(r);

  // A syntax error (the call opened on line 3 is not closed; Lua reports it
  // on line 4): refused, with file:line; generation 2 serves on.
  dir.put("10-gen.lua",
          "-- broken\n"
          "function on_inform(dev, inform)\n"
          "  dev:tag(\"gen\" .. luacs.generation\n"
          "end\n");
  r = run_luacs({"reload", "-c", cfg.path});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_NE(r.err.find(file + ":"), std::string::npos) << show(r);
  EXPECT_NE(r.err.find("10-gen.lua:4:"), std::string::npos) << show(r);
  EXPECT_NE(r.err.find("generation 2 keeps serving"), std::string::npos) << show(r);
  EXPECT_EQ(r.out, "") << show(r);
  session("R3", {"gen2", "v2"});

  r = run_luacs({"status", "-c", cfg.path});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out.rfind("ok generation 2\n", 0), 0u) << show(r);
  EXPECT_NE(r.out.find("\nloads 3 failed 1\n"), std::string::npos) << show(r);
  EXPECT_NE(r.out.find("\nlast_error " + file + ":4:"), std::string::npos) << show(r);

  // Fixed, and reloaded by SIGHUP this time: generation 3.
  dir.put("10-gen.lua", policy("v3"));
  ASSERT_GT(luacs.pid(), 0);
  ASSERT_EQ(kill(luacs.pid(), SIGHUP), 0);
  EXPECT_TRUE(wait_for([&] { return luacs.count("policy generation 3 loaded") == 1; }))
      << luacs.log();
  EXPECT_EQ(luacs.count("(SIGHUP)"), 1u) << luacs.log();
  session("R4", {"gen3", "v3"});
  // A device seen before gets the new tags on top of its old ones.
  session("R1", {"gen1", "v1", "gen3", "v3"});

  r = run_luacs({"status", "-c", cfg.path});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out.rfind("ok generation 3\n", 0), 0u) << show(r);
  EXPECT_EQ(r.out.find("last_error"), std::string::npos) << show(r);
  EXPECT_NE(r.out.find("\nhook_calls 5 hook_errors 0\n"), std::string::npos) << show(r);

  EXPECT_EQ(luacs.stop(), 0) << luacs.log();
  // Once stopped, the command line says it cannot reach it.
  r = run_luacs({"reload", "-c", cfg.path});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_NE(r.err.find("cannot reach luacs"), std::string::npos) << show(r);
}

// 4. Reloads while the load generator keeps a few hundred devices busy, each
// session suspended in a dev:get across reloads: no session is dropped, each
// reload is answered, and devices carry the tags of several generations.
TEST(PolicyE2E, ReloadUnderLoadDropsNoSession) {
  if (!*LUACS_LOADGEN) GTEST_SKIP() << "needs the load generator (LUACS_BENCH=ON)";
  TempDatabase db("policy_load");
  TempDir dir("load");
  auto policy = [](const std::string& version) {
    return "-- policy " + version +
           "\n"
           "function on_inform(dev, inform)\n"
           "  local name = dev.root .. \".DeviceInfo.SoftwareVersion\"\n"
           "  local got, fault = dev:get(name)\n"
           "  if not got or not got[name] then\n"
           "    error(\"no \" .. name .. \": \" .. tostring(fault and fault.code))\n"
           "  end\n"
           "  dev:tag(\"gen\" .. luacs.generation)\n"
           "  dev:tag(\"" +
           version +
           "\")\n"
           "end\n";
  };
  dir.put("10-load.lua", policy("va"));
  Config cfg(ini(dir.str()));
  LuacsProcess luacs(cfg.text, {"--store-dsn", db.dsn()});
  ASSERT_TRUE(luacs.started()) << luacs.log();

  // Long enough for the five reloads below (each a `luacs status` and a
  // `luacs reload` process, then 700 ms) to land inside it with a margin even
  // on a busy machine under ASan: generation 5 must serve sessions too.
  Load load(luacs.port(),
            "--duration 12 --concurrency 16 --devices 300 --model mixed"
            " --events '1 BOOT:1,2 PERIODIC:8,7 TRANSFER COMPLETE:1' --quiet");

  // While it runs: A/B alternately, one broken in between.
  struct Step {
    std::string text;
    int exit_code;
    std::string answer;  // expected at the start of stdout (ok) or in stderr (error)
  };
  const std::vector<Step> steps = {
      {policy("vb"), 0, "ok generation 2\n"},
      {policy("va"), 0, "ok generation 3\n"},
      {"function on_inform(dev, inform)\n  dev:tag(\n", 1, "generation 3 keeps serving"},
      {policy("vb"), 0, "ok generation 4\n"},
      {policy("va"), 0, "ok generation 5\n"},
  };
  std::this_thread::sleep_for(700ms);
  long long most_live = 0;  // sessions in flight seen right before a reload
  for (const auto& step : steps) {
    Cli before = run_luacs({"status", "-c", cfg.path});
    EXPECT_EQ(before.exit_code, 0) << show(before);
    most_live = std::max(most_live, number_after(before.out, "\nsessions_live "));
    dir.put("10-load.lua", step.text);
    Cli r = run_luacs({"reload", "-c", cfg.path});
    EXPECT_EQ(r.exit_code, step.exit_code) << show(r);
    if (step.exit_code == 0) {
      EXPECT_EQ(r.out.rfind(step.answer, 0), 0u) << show(r);
    } else {
      EXPECT_NE(r.err.find(step.answer), std::string::npos) << show(r);
      EXPECT_NE(r.err.find(dir.str() + "/10-load.lua:"), std::string::npos) << show(r);
    }
    std::this_thread::sleep_for(700ms);
  }
  Cli status = run_luacs({"status", "-c", cfg.path});
  load.join();
  EXPECT_GT(most_live, 0) << "no session was in flight at any reload";

  EXPECT_EQ(load.status, 0) << load.output << load.json;
  const long long completed = json_number(load.json, "completed");
  EXPECT_GT(completed, 100) << load.json;
  EXPECT_EQ(json_number(load.json, "failed"), 0) << load.json;
  EXPECT_EQ(json_number(load.json, "unfinished"), 0) << load.json;
  EXPECT_EQ(json_number(load.json, "total"), 0) << load.json;
  EXPECT_EQ(json_number(load.json, "busy_503"), 0) << load.json;
  // Every session was asked for the parameter (a dev:get in every on_inform).
  EXPECT_EQ(json_number(load.json, "GetParameterValues"), completed) << load.json;

  EXPECT_EQ(status.exit_code, 0) << show(status);
  EXPECT_EQ(status.out.rfind("ok generation 5\n", 0), 0u) << show(status);
  EXPECT_NE(status.out.find("\nloads 6 failed 1\n"), std::string::npos) << show(status);
  EXPECT_NE(status.out.find(" hook_errors 0\n"), std::string::npos) << show(status);

  EXPECT_EQ(luacs.stop(), 0) << luacs.log().substr(0, 4000);
  EXPECT_EQ(luacs.count("policy error"), 0u) << luacs.log().substr(0, 4000);
  EXPECT_EQ(luacs.count("keeps serving"), 1u);
  for (int g = 2; g <= 5; ++g)
    EXPECT_EQ(luacs.count("policy generation " + std::to_string(g) + " loaded from"), 1u) << g;

  Pg pg(db.dsn());
  // Every completed session reached the store, each on some generation.
  EXPECT_EQ(pg.value("SELECT count(*) FROM session_log"), std::to_string(completed));
  std::set<std::string> generations;
  for (const auto& row : pg.query("SELECT DISTINCT t FROM devices, unnest(tags) t"
                                  " WHERE t LIKE 'gen%' ORDER BY t"))
    generations.insert(row[0]);
  EXPECT_GT(generations.size(), 1u) << join(generations);
  // Each generation that loaded served sessions; none other did.
  EXPECT_EQ(generations, (std::set<std::string>{"gen1", "gen2", "gen3", "gen4", "gen5"}))
      << join(generations);
  EXPECT_EQ(pg.value("SELECT count(*) FROM devices WHERE NOT tags && ARRAY['va', 'vb']"), "0");
  EXPECT_GT(std::stoll(pg.value("SELECT count(*) FROM devices WHERE tags @> ARRAY['va', 'vb']")),
            0);
  EXPECT_EQ(pg.value("SELECT count(*) FROM faults WHERE source = 'policy'"), "0");
}

// 5. `luacs check`: the offline validation of a policy folder.
TEST(PolicyE2E, CheckCommandLine) {
  // The shipped policy is fine.
  const std::string shipped = std::string(LUACS_SOURCE_DIR) + "/policies/default";
  Cli r = run_luacs({"check", shipped});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out.rfind(shipped + ": ok (", 0), 0u) << show(r);
  EXPECT_NE(r.out.find(" files; hooks: "), std::string::npos) << show(r);
  EXPECT_NE(r.out.find("on_inform"), std::string::npos) << show(r);
  EXPECT_NE(r.out.find("; tasks: adopt"), std::string::npos) << show(r);
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << show(r);

  // A folder of our own, with a config naming it (check without a folder
  // argument takes [policy] dir).
  TempDir ok("check-ok");
  ok.put("10-main.lua",
         "tasks = tasks or {}\n"
         "function on_inform(dev, inform) dev:tag(\"seen\") end\n"
         "function tasks.hello(dev, args) return \"hi\" end\n");
  Config cfg(ini(ok.str()));
  r = run_luacs({"check", "-c", cfg.path});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_EQ(r.out, ok.str() + ": ok (1 files; hooks: on_inform; tasks: hello)\n") << show(r);
  EXPECT_EQ(r.err, "") << show(r);

  // A misspelt hook: a warning, still exit 0.
  TempDir typo("check-typo");
  typo.put("10-main.lua",
           "function on_inform(dev, inform) end\n"
           "\n"
           "function on_transfer_complet(dev, tc) end\n");
  r = run_luacs({"check", "-c", cfg.path, typo.str()});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_NE(r.out.find(": ok (1 files; hooks: on_inform;"), std::string::npos) << show(r);
  EXPECT_NE(r.err.find("warning: "), std::string::npos) << show(r);
  EXPECT_NE(r.err.find("10-main.lua:3"), std::string::npos) << show(r);
  EXPECT_NE(r.err.find("'on_transfer_complet'"), std::string::npos) << show(r);
  EXPECT_NE(r.err.find("did you mean on_transfer_complete?"), std::string::npos) << show(r);

  // A syntax error: exit 1 with file:line.
  TempDir syntax("check-syntax");
  syntax.put("00-settings.lua", "settings = {}\n");
  syntax.put("20-main.lua",
             "function on_inform(dev, inform)\n"
             "  if dev.is_new then\n"
             "    local n = = 1\n"
             "  end\n"
             "end\n");
  r = run_luacs({"check", syntax.str()});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_NE(r.err.find(syntax.str() + "/20-main.lua:3:"), std::string::npos) << show(r);
  EXPECT_EQ(r.out, "") << show(r);

  // An error raised while the file runs: file:line too.
  TempDir runtime("check-runtime");
  runtime.put("10-main.lua", "local x = 1\nerror(\"refusing to load\")\n");
  r = run_luacs({"check", runtime.str()});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_NE(r.err.find(runtime.str() + "/10-main.lua:2: refusing to load"), std::string::npos)
      << show(r);

  // No such folder.
  r = run_luacs({"check", ok.str() + "/nope"});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << show(r);

  // A config named with -c that does not exist is an error, not silently
  // replaced by the default limits.
  r = run_luacs({"check", "-c", ok.str() + "/missing.ini", ok.str()});
  EXPECT_EQ(r.exit_code, 1) << show(r);
  EXPECT_NE(r.err.find("missing.ini"), std::string::npos) << show(r);
  EXPECT_EQ(r.out, "") << show(r);

  // The server refuses to start on a policy `luacs check` refuses.
  LuacsProcess broken(ini(syntax.str()));
  EXPECT_FALSE(broken.started()) << broken.log();
  EXPECT_NE(
      broken.log().find("luacs: policy " + syntax.str() + ": " + syntax.str() + "/20-main.lua:3:"),
      std::string::npos)
      << broken.log();
}
