// HTTPS on the API port (:7557, which also serves the web page) and the
// file server's (:7567), issue 14, through the real binary: the [cwmp]
// certificates from scripts/dev-ca, reloaded with them, no client
// certificate asked for; a token or a file's URL never crosses plain HTTP.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/dev_ca.h"
#include "support/http_client.h"
#include "support/luacs_process.h"
#include "support/temp_dir.h"
#include "support/tls_client.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::ApiServer;
using test::CpeClient;
using test::HttpResponse;
using test::LuacsProcess;
using test::TempDir;
using test::TlsClient;
using test::TlsOptions;

namespace {

namespace fs = std::filesystem;

// Two throw-away CAs for the whole file: the first one's server
// certificates are served at start; the second's replace them in a reload.
const auto* const kCas =
    ::testing::AddGlobalTestEnvironment(new test::DevCas("nbi-tls", {"one", "two"}));
// A write to a connection the server closed fails instead of killing the test.
const bool kNoSigpipe = (::signal(SIGPIPE, SIG_IGN), true);

std::string ca_file(const std::string& ca, const std::string& name) {
  return test::DevCas::file(ca, name);
}

const char* const kServed[] = {"server-ecdsa.crt", "server-ecdsa.key", "server-rsa.crt",
                               "server-rsa.key"};

// A folder of its own with the certificates a server is started with
// (copies, so that a test may overwrite them before a reload).
std::string cert_dir(const std::string& ca) {
  static int n = 0;
  const fs::path d = test::DevCas::dir() / ("served-" + std::to_string(++n));
  fs::create_directories(d);
  for (const char* f : kServed) fs::copy_file(test::DevCas::dir() / ca / f, d / f);
  return d.string();
}

// The [cwmp] keys of the certificates in `certs`.
std::string cert_keys(const std::string& certs, const std::string& more = "") {
  return "tls_cert = " + certs + "/server-ecdsa.crt, " + certs +
         "/server-rsa.crt\ntls_key = " + certs + "/server-ecdsa.key, " + certs +
         "/server-rsa.key\ntls_handshake_timeout = 1s\n" + more;
}

TlsOptions trusting(const std::string& ca = "one") {
  TlsOptions o;
  o.cas = {ca_file(ca, "ca.crt")};
  return o;
}

// The port after `marker` in the log (0 when absent).
uint16_t port_after(LuacsProcess& p, const std::string& marker) {
  const std::string log = p.log();
  const auto at = log.find(marker);
  return at == std::string::npos ? 0
                                 : static_cast<uint16_t>(std::stoi(log.substr(at + marker.size())));
}

bool wait_for_log(LuacsProcess& p, const std::string& needle, size_t count = 1) {
  for (int i = 0; i < 250; ++i) {
    if (p.count(needle) >= count) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// One Inform / empty POST / 204 session on the plain CWMP port.
void session(uint16_t port, const std::string& serial) {
  CpeClient c(port);
  HttpResponse r = c.post(test::inform_xml(serial));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(c.post("").status, 204);
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

constexpr std::string_view kHttpsOnly = "This port speaks HTTPS only\n";

}  // namespace

// The API over HTTPS: an open route, an authenticated one on the same
// keep-alive connection, the CSV export streamed in chunks; plain HTTP to
// the port (without a token) gets a 400 and the port goes on serving.
TEST(HttpsApi, RoutesAndCsvExportOverTlsAndPlainHttpRefused) {
  ApiServer api("nbi_tls",
                "[cwmp]\n" + cert_keys(cert_dir("one")) + "[nbi]\nlisten = https://127.0.0.1:0\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  EXPECT_NE(api.luacs().log().find("; API on https://127.0.0.1:"), std::string::npos);
  const std::string auth = "Authorization: Bearer " + api.token("ops", "read");
  session(api.cwmp_port(), "TLSAPI1");

  TlsClient c(api.port(), trusting());
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_EQ(TlsClient(api.port(), trusting()).get("/devices").status, 401);  // no token
  EXPECT_EQ(c.get("/healthz").status, 200);
  HttpResponse r;
  for (int i = 0; i < 100; ++i) {
    r = c.get("/devices", {auth});
    if (r.body.find("TLSAPI1") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("TLSAPI1"), std::string::npos) << r.body;

  r = c.get("/devices?fields=id,serial_number", {auth, "Accept: text/csv"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("transfer-encoding"), "chunked");
  EXPECT_EQ(r.body.rfind("id,serial_number\r\n", 0), 0u) << r.body;
  EXPECT_NE(r.body.find(",TLSAPI1"), std::string::npos) << r.body;

  const auto plain = test::http_request(api.port(), "GET", "/healthz");
  EXPECT_EQ(plain.status, 400);
  EXPECT_EQ(plain.body, kHttpsOnly);

  EXPECT_EQ(c.get("/healthz").status, 200);  // the connection in flight
  TlsClient again(api.port(), trusting());
  ASSERT_TRUE(again.connected()) << again.error();
  EXPECT_EQ(again.get("/devices?limit=1", {auth}).status, 200);
}

// GET /events streams over TLS: the greeting, then a session's end.
TEST(HttpsApi, EventsStreamOverTls) {
  ApiServer api("nbi_tls_events",
                "[cwmp]\n" + cert_keys(cert_dir("one")) + "[nbi]\nlisten = https://127.0.0.1:0\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string token = api.token("watcher", "read");

  TlsClient c(api.port(), trusting());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.send_raw("GET /events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " +
                         token + "\r\n\r\n"));
  ASSERT_TRUE(c.wait_for(": luacs events", 10s)) << c.received();
  EXPECT_EQ(c.received().rfind("HTTP/1.1 200", 0), 0u) << c.received();
  session(api.cwmp_port(), "TLSEVENTS1");
  EXPECT_TRUE(c.wait_for("TLSEVENTS1", 10s)) << c.received();
}

// The web page's login over HTTPS: its cookie is Secure (core/nbi/login.h),
// and it works on the same connection.
TEST(HttpsApi, TheLoginCookieIsSecureUnderTls) {
  ApiServer api("nbi_tls_login",
                "[cwmp]\n" + cert_keys(cert_dir("one")) + "[nbi]\nlisten = https://127.0.0.1:0\n");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string token = api.token("desk", "read");
  TlsClient c(api.port(), trusting());
  ASSERT_TRUE(c.connected()) << c.error();
  const std::string body = "{\"token\": \"" + token + "\"}";
  ASSERT_TRUE(c.send_raw("POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body));
  const HttpResponse r = c.read_response();
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string cookie = r.header("set-cookie");
  ASSERT_EQ(cookie.rfind("luacs_session=", 0), 0u) << cookie;
  EXPECT_NE(cookie.find("; Path=/; HttpOnly; SameSite=Strict; Max-Age=604800; Secure"),
            std::string::npos)
      << cookie;
  const std::string value = cookie.substr(14, cookie.find(';') - 14);
  EXPECT_EQ(c.get("/devices", {"Cookie: luacs_session=" + value}).status, 200);
}

// The API and file ports never ask for a client certificate, even when the
// CWMP port requires one (which the same client notices there).
TEST(HttpsApi, NoClientCertificateAskedEvenWhenCwmpRequiresOne) {
  const std::string certs = cert_dir("one");
  LuacsProcess p("[cwmp]\nlisten = 127.0.0.1:0, https://127.0.0.1:0\n" +
                 cert_keys(certs, "tls_client_auth = required\ntls_client_ca = " +
                                      ca_file("one", "ca.crt") + "\n") +
                 "[nbi]\nlisten = https://127.0.0.1:0\n[files]\nlisten = https://127.0.0.1:0\n");
  ASSERT_TRUE(p.started()) << p.log();
  const uint16_t cwmp_tls =
      port_after(p, "listening on 127.0.0.1:" + std::to_string(p.port()) + ", https://127.0.0.1:");
  const uint16_t files = port_after(p, "files on https://127.0.0.1:");
  ASSERT_NE(cwmp_tls, 0) << p.log();
  ASSERT_NE(files, 0) << p.log();

  TlsClient cwmp(cwmp_tls, trusting());
  EXPECT_TRUE(cwmp.certificate_requested());

  TlsClient api(p.api_port(), trusting());
  ASSERT_TRUE(api.connected()) << api.error();
  EXPECT_FALSE(api.certificate_requested());
  EXPECT_EQ(api.get("/healthz").status, 200);

  TlsClient f(files, trusting());
  ASSERT_TRUE(f.connected()) << f.error();
  EXPECT_FALSE(f.certificate_requested());
  EXPECT_EQ(f.get("/0123456789abcdef/nothing.bin").status, 404);
}

// SIGHUP reads the certificates again for the API and file ports too: a new
// connection sees the new certificate, one in flight keeps working, and a
// broken file keeps the new-old one for both.
TEST(HttpsApi, ReloadSwapsTheCertificateAndABrokenOneKeepsTheOld) {
  const std::string certs = cert_dir("one");
  LuacsProcess p("[cwmp]\nlisten = 127.0.0.1:0\n" + cert_keys(certs) +
                 "[nbi]\nlisten = https://127.0.0.1:0\n[files]\nlisten = https://127.0.0.1:0\n");
  ASSERT_TRUE(p.started()) << p.log();
  const uint16_t files = port_after(p, "files on https://127.0.0.1:");
  ASSERT_NE(files, 0) << p.log();

  TlsClient before(p.api_port(), trusting("one"));
  ASSERT_TRUE(before.connected()) << before.error();
  const std::string first = before.server_sha256();
  ASSERT_FALSE(first.empty());

  for (const char* f : kServed)
    fs::copy_file(test::DevCas::dir() / "two" / f, fs::path(certs) / f,
                  fs::copy_options::overwrite_existing);
  ASSERT_EQ(::kill(p.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for_log(p, "TLS certificates reloaded (SIGHUP)")) << p.log();

  TlsClient after(p.api_port(), trusting("two"));
  ASSERT_TRUE(after.connected()) << after.error();
  const std::string second = after.server_sha256();
  EXPECT_NE(second, first);
  EXPECT_EQ(after.get("/healthz").status, 200);
  EXPECT_EQ(before.get("/healthz").status, 200);  // in flight: its own context
  TlsClient files_after(files, trusting("two"));
  ASSERT_TRUE(files_after.connected()) << files_after.error();
  EXPECT_EQ(files_after.server_sha256(), second);

  std::ofstream(fs::path(certs) / "server-ecdsa.key") << "not a key\n";
  ASSERT_EQ(::kill(p.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for_log(p, "TLS certificates reload (SIGHUP) failed")) << p.log();
  TlsClient kept(p.api_port(), trusting("two"));
  ASSERT_TRUE(kept.connected()) << kept.error();
  EXPECT_EQ(kept.server_sha256(), second);
  EXPECT_EQ(kept.get("/healthz").status, 200);
  TlsClient files_kept(files, trusting("two"));
  ASSERT_TRUE(files_kept.connected()) << files_kept.error();
  EXPECT_EQ(files_kept.server_sha256(), second);
}

// A policy pushes a file of [files] dir: the CPE is given an https:// URL
// on the file port, and the file (larger than what is read ahead at once)
// comes whole over TLS, a range too; plain HTTP there gets a 400.
TEST(HttpsFiles, PushedUrlIsHttpsAndTheFileDownloadsOverTls) {
  TempDir dir, policy;
  const std::string image = random_bytes(700 * 1024 + 123, 7);
  dir.write("fw.bin", image);
  policy.write("main.lua", R"(
    function on_inform(dev)
      dev:download{ url = dev:file_url("fw.bin"), file_type = "1 Firmware Upgrade Image" }
    end
  )");
  LuacsProcess p("[cwmp]\nlisten = 127.0.0.1:0\n" + cert_keys(cert_dir("one")) +
                 "[files]\nlisten = https://127.0.0.1:0\ndir = " + dir.path() +
                 "\nsecret = test-secret\n[policy]\ndir = " + policy.path() +
                 "\n[log]\nlevel = info\n");
  ASSERT_TRUE(p.started()) << p.log();
  const uint16_t files = port_after(p, "files on https://127.0.0.1:");
  ASSERT_NE(files, 0) << p.log();

  CpeClient cpe(p.port());
  ASSERT_EQ(cpe.post(test::inform_xml("TLSFILES1")).status, 200);
  const HttpResponse dl = cpe.post("");
  ASSERT_EQ(dl.status, 200) << dl.body << p.log();
  const auto at = dl.body.find("<URL>");
  ASSERT_NE(at, std::string::npos) << dl.body;
  const std::string url = dl.body.substr(at + 5, dl.body.find("</URL>", at) - at - 5);
  const std::string base = "https://acs.test:" + std::to_string(files);
  ASSERT_EQ(url.rfind(base + "/", 0), 0u) << url;
  const std::string path = url.substr(base.size());

  const auto plain = test::http_request(files, "GET", path);
  EXPECT_EQ(plain.status, 400);
  EXPECT_EQ(plain.body, kHttpsOnly);

  TlsClient c(files, trusting());
  ASSERT_TRUE(c.connected()) << c.error();
  HttpResponse r = c.get(path);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), image.size());
  EXPECT_TRUE(r.body == image);
  r = c.get(path, {"Range: bytes=400000-400099"});  // the same connection
  ASSERT_EQ(r.status, 206);
  EXPECT_TRUE(r.body == image.substr(400000, 100));
}

// A client that connects and never says hello is dropped at
// tls_handshake_timeout (1s here), long before the idle timeouts of the
// API (60s) and the file server (30s).
TEST(HttpsApi, AStalledHandshakeIsDroppedAtItsDeadline) {
  LuacsProcess p("[cwmp]\nlisten = 127.0.0.1:0\n" + cert_keys(cert_dir("one")) +
                 "[nbi]\nlisten = https://127.0.0.1:0\n[files]\nlisten = https://127.0.0.1:0\n");
  ASSERT_TRUE(p.started()) << p.log();
  const uint16_t files = port_after(p, "files on https://127.0.0.1:");
  ASSERT_NE(files, 0) << p.log();
  for (const uint16_t port : {p.api_port(), files}) {
    const int fd = test::connect_loopback(port);
    ASSERT_GE(fd, 0);
    const timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto start = std::chrono::steady_clock::now();
    char b;
    EXPECT_EQ(::recv(fd, &b, 1, 0), 0) << "port " << port;  // closed, not timed out
    EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);
    ::close(fd);
  }
  TlsClient c(p.api_port(), trusting());  // still serving
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_EQ(c.get("/healthz").status, 200);
}

// An https:// API or file port without certificates is a line-numbered
// error of the configuration, not a start-up surprise.
TEST(HttpsApi, HttpsListenWithoutCertificatesIsAConfigError) {
  for (const std::string section : {"nbi", "files"}) {
    LuacsProcess p("[cwmp]\nlisten = 127.0.0.1:0\n[" + section +
                   "]\nlisten = https://127.0.0.1:0\n[log]\nlevel = info\n");
    EXPECT_FALSE(p.started());
    EXPECT_NE(p.log().find(":4: an https:// [" + section +
                           "] listen needs tls_cert and tls_key in [cwmp]"),
              std::string::npos)
        << p.log();
  }
}
