// HTTPS on the CWMP port (issue 14), through the real binary: an http:// and
// an https:// listener side by side in one process, certificates from
// scripts/dev-ca, a blocking OpenSSL client playing the CPE.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/dev_ca.h"
#include "support/http_client.h"
#include "support/luacs_process.h"
#include "support/test_server.h"
#include "support/tls_client.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::CpeClient;
using test::HttpResponse;
using test::inform_xml;
using test::LuacsProcess;
using test::TlsClient;
using test::TlsOptions;

namespace {

namespace fs = std::filesystem;

// Two throw-away CAs for the whole file: the first one's server
// certificates are served at start; the second's replace them in a reload.
const auto* const kCas =
    ::testing::AddGlobalTestEnvironment(new test::DevCas("https", {"one", "two"}));

std::string ca_file(const std::string& ca, const std::string& name) {
  return test::DevCas::file(ca, name);
}

// A folder of its own holding the certificates a server is started with
// (copies, so that a test may overwrite them before a reload).
std::string cert_dir(const std::string& ca) {
  static int n = 0;
  const fs::path d = test::DevCas::dir() / ("served-" + std::to_string(++n));
  fs::create_directories(d);
  for (const char* f : {"server-ecdsa.crt", "server-ecdsa.key", "server-rsa.crt", "server-rsa.key"})
    fs::copy_file(test::DevCas::dir() / ca / f, d / f);
  return d.string();
}

std::string ini_of(const std::string& certs, const std::string& extra = "", int workers = 2) {
  return "[cwmp]\nlisten = 127.0.0.1:0, https://127.0.0.1:0\nworkers = " + std::to_string(workers) +
         "\ntls_cert = " + certs + "/server-ecdsa.crt, " + certs +
         "/server-rsa.crt\ntls_key = " + certs + "/server-ecdsa.key, " + certs +
         "/server-rsa.key\ntls_handshake_timeout = 1s\n" + extra;
}

// The https:// port, from the start-up line.
uint16_t tls_port(LuacsProcess& p) {
  const std::string log = p.log();
  const std::string mark = "https://127.0.0.1:";
  const auto at = log.find(mark);
  return at == std::string::npos ? 0
                                 : static_cast<uint16_t>(std::stoi(log.substr(at + mark.size())));
}

TlsOptions trusting(std::vector<std::string> cas = {ca_file("one", "ca.crt")}) {
  TlsOptions o;
  o.cas = std::move(cas);
  return o;
}

// One Inform / empty POST / 204 session.
template <typename Client>
void session(Client& c, const std::string& serial) {
  HttpResponse r = c.post(inform_xml(serial));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.header("set-cookie").find("session="), std::string::npos);
  r = c.post("");
  EXPECT_EQ(r.status, 204);
}

// The session ticket a client holds (bytes; "" for none).
std::string ticket_of(const test::SslSession& s) {
  const unsigned char* t = nullptr;
  size_t n = 0;
  if (s) SSL_SESSION_get0_ticket(s.get(), &t, &n);
  return std::string(reinterpret_cast<const char*>(t), n);
}

// One value of /metrics ("" when absent).
std::string metric(LuacsProcess& p, const std::string& series) {
  const auto m = test::http_request(p.api_port(), "GET", "/metrics");
  const auto at = m.body.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  const auto start = at + series.size() + 2;
  return m.body.substr(start, m.body.find('\n', start) - start);
}

bool wait_for_log(LuacsProcess& p, const std::string& needle, size_t count = 1) {
  for (int i = 0; i < 250; ++i) {
    if (p.count(needle) >= count) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST(Https, HttpAndHttpsSideBySide) {
  LuacsProcess p(ini_of(cert_dir("one")));
  ASSERT_TRUE(p.started()) << p.log();
  const uint16_t port = tls_port(p);
  ASSERT_NE(port, 0) << p.log();
  EXPECT_NE(p.log().find("TLS certificates: ECDSA prime256v1 CN=localhost"), std::string::npos);

  CpeClient plain(p.port());
  session(plain, "PLAIN1");
  TlsClient tls(port, trusting());
  ASSERT_TRUE(tls.connected()) << tls.error();
  session(tls, "TLS1");
  session(tls, "TLS1");  // keep-alive carries a second session
  EXPECT_EQ(metric(p, "luacs_tls_handshakes_total{result=\"ok\"}"), "1");
}

TEST(Https, EcdsaOrRsaByTheClientsSignatureAlgorithms) {
  LuacsProcess p(ini_of(cert_dir("one")));
  ASSERT_TRUE(p.started()) << p.log();
  TlsOptions ec = trusting(), rsa = trusting();
  ec.sigalgs = "ECDSA+SHA256";
  rsa.sigalgs = "RSA-PSS+SHA256:RSA+SHA256";
  TlsClient a(tls_port(p), ec), b(tls_port(p), rsa);
  ASSERT_TRUE(a.connected()) << a.error();
  ASSERT_TRUE(b.connected()) << b.error();
  EXPECT_EQ(a.server_key_type(), "EC");
  EXPECT_EQ(b.server_key_type(), "RSA");
  session(b, "RSA1");
}

TEST(Https, SessionsResumeAlsoAfterAReload) {
  LuacsProcess p(ini_of(cert_dir("one")));
  ASSERT_TRUE(p.started()) << p.log();
  test::SslSession saved;
  {
    TlsClient c(tls_port(p), trusting());
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_FALSE(c.resumed());
    session(c, "RESUME1");
    saved = c.session();
  }
  {
    TlsOptions o = trusting();
    o.resume = saved;
    TlsClient c(tls_port(p), o);
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_TRUE(c.resumed());
    session(c, "RESUME1");
    // A TLS 1.3 ticket is good for one resumption: a resumed connection
    // gets a fresh one, or the CPE's next connection is a full handshake.
    EXPECT_NE(ticket_of(c.session()), ticket_of(saved));
    saved = c.session();
  }
  ::kill(p.pid(), SIGHUP);
  ASSERT_TRUE(wait_for_log(p, "TLS certificates reloaded (SIGHUP)")) << p.log();
  TlsOptions o = trusting();
  o.resume = saved;
  TlsClient c(tls_port(p), o);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_TRUE(c.resumed()) << "the ticket keys are the process's, not the context's";
  session(c, "RESUME1");
  EXPECT_EQ(metric(p, "luacs_tls_resumed_total"), "2");
}

TEST(Https, ReloadWithAGoodThenABadCertificate) {
  const std::string certs = cert_dir("one");
  const std::string control = test::temp_file("ctl", "") + ".sock";
  const std::string ini = ini_of(certs, "\n[control]\nsocket = " + control + "\n");
  LuacsProcess p(ini);
  ASSERT_TRUE(p.started()) << p.log();
  const auto both = trusting({ca_file("one", "ca.crt"), ca_file("two", "ca.crt")});
  TlsClient before(tls_port(p), both);
  ASSERT_TRUE(before.connected()) << before.error();
  // Both CAs number their certificates alike: the fingerprint tells them apart.
  const std::string old_cert = before.server_sha256();
  ASSERT_EQ(before.post(inform_xml("KEEP1")).status, 200);

  // A good new certificate: new handshakes see it; the open connection goes on.
  for (const char* f : {"server-ecdsa.crt", "server-ecdsa.key", "server-rsa.crt", "server-rsa.key"})
    fs::copy_file(test::DevCas::dir() / "two" / f, fs::path(certs) / f,
                  fs::copy_options::overwrite_existing);
  ::kill(p.pid(), SIGHUP);
  ASSERT_TRUE(wait_for_log(p, "TLS certificates reloaded (SIGHUP)")) << p.log();
  TlsClient after(tls_port(p), both);
  ASSERT_TRUE(after.connected()) << after.error();
  const std::string new_cert = after.server_sha256();
  EXPECT_NE(new_cert, old_cert);
  EXPECT_EQ(before.post("").status, 204) << "a connection in flight keeps its context";
  TlsClient only_old_ca(tls_port(p), trusting());
  EXPECT_FALSE(only_old_ca.connected()) << "the new certificate is the second CA's";

  // A bad one: the error is logged and answered; the good one keeps serving.
  std::ofstream(fs::path(certs) / "server-rsa.crt") << "not a certificate\n";
  const std::string cmd = std::string(LUACS_BINARY) + " reload -c " +
                          test::temp_file("reload.ini", test::with_test_defaults(ini)) + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string answer;
  char buf[512];
  while (fgets(buf, sizeof buf, f)) answer += buf;
  const int status = pclose(f);
  EXPECT_NE(WEXITSTATUS(status), 0) << answer;
  EXPECT_NE(answer.find("server-rsa.crt"), std::string::npos) << answer;
  EXPECT_NE(answer.find("the old TLS certificates keep serving"), std::string::npos) << answer;
  EXPECT_TRUE(wait_for_log(p, "TLS certificates reload (luacs reload) failed")) << p.log();
  TlsClient still(tls_port(p), both);
  ASSERT_TRUE(still.connected()) << still.error();
  EXPECT_EQ(still.server_sha256(), new_cert);
  session(still, "KEEP2");
}

TEST(Https, PlainHttpAtTheTlsPortIsAnsweredAndClosed) {
  LuacsProcess p(ini_of(cert_dir("one")));
  ASSERT_TRUE(p.started()) << p.log();
  CpeClient c(tls_port(p));
  HttpResponse r = c.post(inform_xml("PLAIN2"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("HTTPS"), std::string::npos) << r.body;
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(metric(p, "luacs_tls_handshakes_total{result=\"failed\"}"), "1");
  TlsClient tls(tls_port(p), trusting());  // and the port still serves
  ASSERT_TRUE(tls.connected()) << tls.error();
  session(tls, "TLS2");
}

TEST(Https, AStalledHandshakeIsDroppedAtTheDeadline) {
  LuacsProcess p(ini_of(cert_dir("one")));
  ASSERT_TRUE(p.started()) << p.log();
  CpeClient idle(tls_port(p));  // connects, never says hello
  ASSERT_TRUE(idle.connected());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(idle.closed_by_peer(5s, /*data_allowed=*/false));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 800ms);
  EXPECT_EQ(metric(p, "luacs_tls_handshakes_total{result=\"timeout\"}"), "1");
}

TEST(Https, TlsAtThePlainPortIsAnsweredAndClosed) {
  LuacsProcess p(ini_of(cert_dir("one")));
  ASSERT_TRUE(p.started()) << p.log();
  TlsClient tls(p.port(), trusting());
  EXPECT_FALSE(tls.connected());
  EXPECT_EQ(metric(p, "luacs_cwmp_bad_requests_total"), "1");
  CpeClient plain(p.port());  // and the port still serves
  session(plain, "PLAIN3");
}

// OpenSSL 3 refuses a client's renegotiation by default; luacs sets
// SSL_OP_NO_RENEGOTIATION on top (with SSL_OP_ALLOW_CLIENT_RENEGOTIATION
// instead, this test fails).
TEST(Https, RenegotiationIsRefused) {
  LuacsProcess p(ini_of(cert_dir("one")));
  ASSERT_TRUE(p.started()) << p.log();
  TlsOptions tls12 = trusting();
  tls12.max_version = TLS1_2_VERSION;
  TlsClient c(tls_port(p), tls12);
  ASSERT_TRUE(c.connected()) << c.error();
  session(c, "RENEG1");
  EXPECT_FALSE(c.renegotiate());
  TlsClient d(tls_port(p), trusting());
  ASSERT_TRUE(d.connected()) << d.error();
  session(d, "RENEG2");
}

// Full handshakes from four clients at once and two hundred connections
// stalled halfway through a ClientHello, on the one worker that also
// carries a CPE's keep-alive sessions: those sessions go on.
TEST(Https, AHandshakeFloodDoesNotStallSessionsInFlight) {
  LuacsProcess p(ini_of(cert_dir("one"), "", 1));
  ASSERT_TRUE(p.started()) << p.log();
  const uint16_t port = tls_port(p);
  TlsClient cpe(port, trusting());
  ASSERT_TRUE(cpe.connected()) << cpe.error();
  session(cpe, "INFLIGHT");

  std::atomic<bool> stop{false};
  std::atomic<int> handshakes{0};
  std::vector<std::thread> flood;
  for (int i = 0; i < 4; ++i)
    flood.emplace_back([&] {
      while (!stop.load())
        if (TlsClient(port, trusting()).connected()) ++handshakes;
    });
  std::vector<std::unique_ptr<CpeClient>> stalled;
  for (int i = 0; i < 200; ++i) {
    stalled.push_back(std::make_unique<CpeClient>(port));
    // A TLS record header and the start of a ClientHello, then nothing.
    stalled.back()->send_raw(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  }
  while (handshakes.load() < 20) std::this_thread::sleep_for(5ms);
  for (int i = 0; i < 10; ++i) session(cpe, "INFLIGHT");
  stop = true;
  for (auto& t : flood) t.join();
  EXPECT_GE(handshakes.load(), 20);
  EXPECT_EQ(metric(p, "luacs_sessions_total{outcome=\"completed\"}"), "11");
}

TEST(Https, Tls11IsRefusedByDefault) {
  LuacsProcess p(ini_of(cert_dir("one")));
  ASSERT_TRUE(p.started()) << p.log();
  TlsOptions old = trusting();
  old.max_version = TLS1_1_VERSION;
  TlsClient c(tls_port(p), old);
  EXPECT_FALSE(c.connected());
  TlsOptions tls12 = trusting();
  tls12.max_version = TLS1_2_VERSION;
  TlsClient d(tls_port(p), tls12);
  EXPECT_TRUE(d.connected()) << d.error();
}

// Basic sends the password as it is: with [auth] allow_basic = tls it is
// accepted inside TLS and refused (challenged with Digest only) over plain
// HTTP; without it, refused inside TLS too.
TEST(Https, BasicOnlyOverTlsAndOnlyWhenConfigured) {
  const std::string basic = "Authorization: Basic Y3BlOnMzY3JldA==";  // cpe:s3cret
  {
    LuacsProcess off(
        ini_of(cert_dir("one"), "\n[auth]\nmode = digest\nusername = cpe\npassword = s3cret\n"));
    ASSERT_TRUE(off.started()) << off.log();
    TlsClient tls(tls_port(off), trusting());
    ASSERT_TRUE(tls.connected()) << tls.error();
    const HttpResponse r = tls.post(inform_xml("BASIC0"), {basic});
    EXPECT_EQ(r.status, 401);
    for (auto [it, end] = r.headers.equal_range("www-authenticate"); it != end; ++it)
      EXPECT_EQ(it->second.rfind("Digest ", 0), 0u) << it->second;
  }
  LuacsProcess p(
      ini_of(cert_dir("one"),
             "\n[auth]\nmode = digest\nusername = cpe\npassword = s3cret\nallow_basic = tls\n"));
  ASSERT_TRUE(p.started()) << p.log();
  CpeClient plain(p.port());
  HttpResponse r = plain.post(inform_xml("BASIC1"), {basic});
  EXPECT_EQ(r.status, 401);
  for (auto [it, end] = r.headers.equal_range("www-authenticate"); it != end; ++it)
    EXPECT_EQ(it->second.rfind("Digest ", 0), 0u) << it->second;

  TlsClient tls(tls_port(p), trusting());
  ASSERT_TRUE(tls.connected()) << tls.error();
  r = tls.post(inform_xml("BASIC1"), {basic});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(tls.post("").status, 204);
}

// A CPE that opens a new TLS connection per message: the connections that
// land on a worker other than the session's are handed over, SSL and all.
TEST(Https, HandoverMovesTheTlsConnection) {
  const fs::path policy = test::DevCas::dir() / "policy";
  fs::create_directories(policy);
  std::ofstream(policy / "policy.lua") << test::policy_reading_uptime(24);
  LuacsProcess p(ini_of(cert_dir("one"), "\n[policy]\ndir = " + policy.string() + "\n", 4));
  ASSERT_TRUE(p.started()) << p.log();
  std::string cookie;
  test::SslSession saved;
  {
    TlsClient c(tls_port(p), trusting());
    ASSERT_TRUE(c.connected()) << c.error();
    ASSERT_EQ(c.post(inform_xml("ROAMER")).status, 200);
    cookie = c.cookie;
    saved = c.session();
  }
  std::string body;  // the empty POST first
  int steps = 0;
  for (;;) {
    TlsOptions o = trusting();
    o.resume = saved;
    TlsClient c(tls_port(p), o);
    ASSERT_TRUE(c.connected()) << c.error();
    c.cookie = cookie;
    HttpResponse r = c.post(body);
    if (r.status == 204) break;
    ASSERT_EQ(r.status, 200) << r.body;
    soap::Envelope req = test::parse_ok(r.body);
    ASSERT_TRUE(std::holds_alternative<soap::GetParameterValues>(req.body));
    body = test::message_xml(soap::GetParameterValuesResponse{}, *req.header.id);
    ASSERT_LT(++steps, 30);
  }
  EXPECT_EQ(steps, 24);
  const std::string handovers = metric(p, "luacs_cwmp_handovers_total");
  ASSERT_FALSE(handovers.empty());
  EXPECT_GT(std::stoi(handovers), 0) << "no connection landed away from the session's worker";
  EXPECT_EQ(metric(p, "luacs_tls_handshakes_total{result=\"failed\"}"), "0");
}
