// Client certificates on the CWMP port (issue 14, docs/tls.md "Client
// certificates"), through the real binary on the private PostgreSQL: every
// outcome (valid, wrong device, expired, revoked, an unknown CA, missing
// when required), the policy's authorize hook, a certificate alone as the
// login, Basic only inside TLS, and the identity stored and shown by the
// API. Certificates from scripts/dev-ca; a blocking OpenSSL client plays
// the CPE.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/dev_ca.h"
#include "support/http_client.h"
#include "support/tls_client.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::ApiServer;
using test::CpeClient;
using test::HttpResponse;
using test::inform_xml;
using test::TlsClient;
using test::TlsOptions;

namespace {

namespace fs = std::filesystem;

// CA "one" signs the server and the devices; CA "two" is one luacs does not
// know. Devices: SN1 and SN2 valid, SNX expired, SNR revoked (in one's CRL).
const auto* const kCas = ::testing::AddGlobalTestEnvironment(
    new test::DevCas("mtls", {"one", "one device SN1", "one device SN2", "one device SNX --expired",
                              "one device SNR --revoked", "two", "two device SN1"}));

std::string file(const std::string& ca, const std::string& name) {
  return test::DevCas::file(ca, name);
}

std::string cwmp_ini(const std::string& client_auth) {
  return "listen = 127.0.0.1:0, https://127.0.0.1:0\nworkers = 2\ntls_cert = " +
         file("one", "server-ecdsa.crt") + "\ntls_key = " + file("one", "server-ecdsa.key") +
         "\ntls_client_ca = " + file("one", "ca.crt") + "\ntls_crl = " + file("one", "crl.pem") +
         "\ntls_client_auth = " + client_auth + "\ntls_handshake_timeout = 2s";
}

uint16_t tls_port(ApiServer& s) {
  const std::string log = s.luacs().log();
  const std::string mark = "https://127.0.0.1:";
  const auto at = log.find(mark);
  return at == std::string::npos ? 0
                                 : static_cast<uint16_t>(std::stoi(log.substr(at + mark.size())));
}

// A TLS client with device `serial`'s certificate of CA `ca` ("" = none).
TlsOptions as_device(const std::string& serial, const std::string& ca = "one") {
  TlsOptions o;
  o.cas = {file("one", "ca.crt")};
  if (!serial.empty()) {
    o.cert = file(ca, "device-" + serial + ".crt");
    o.key = file(ca, "device-" + serial + ".key");
  }
  return o;
}

std::string device_id(const std::string& serial) {
  return "E48D8C-hAP%20lite-" + serial;
}

// One Inform / empty POST / 204 session; false (and why) otherwise.
::testing::AssertionResult session(TlsClient& c, const std::string& serial,
                                   const std::vector<std::string>& headers = {}) {
  HttpResponse r = c.post(inform_xml(serial), headers);
  if (r.status != 200)
    return ::testing::AssertionFailure() << "Inform: " << r.status << " " << r.body;
  r = c.post("");
  if (r.status != 204) return ::testing::AssertionFailure() << "empty POST: " << r.status;
  return ::testing::AssertionSuccess();
}

// The Inform of `serial` over a connection with `o`: its status, and the
// 403's body in `body`.
int inform_status(uint16_t port, const TlsOptions& o, const std::string& serial,
                  std::string* body = nullptr) {
  TlsClient c(port, o);
  if (!c.connected()) return -1;
  const HttpResponse r = c.post(inform_xml(serial));
  if (body) *body = r.body;
  return r.status;
}

std::string metric(ApiServer& s, const std::string& series) {
  const auto m = test::http_request(s.port(), "GET", "/metrics");
  const auto at = m.body.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  const auto start = at + series.size() + 2;
  return m.body.substr(start, m.body.find('\n', start) - start);
}

std::string refused(ApiServer& s, const std::string& reason) {
  return metric(s, "luacs_tls_client_refused_total{reason=\"" + reason + "\"}");
}

bool wait_for_row(ApiServer& s, const std::string& sql, const std::string& id) {
  for (int i = 0; i < 250; ++i) {
    if (s.pg().value(sql, {id}) == "1") return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST(Mtls, RequiredCertificateEveryOutcome) {
  ApiServer s("mtls_required", "", cwmp_ini("required"));
  ASSERT_TRUE(s.started()) << s.luacs().log();
  const uint16_t port = tls_port(s);
  ASSERT_NE(port, 0) << s.luacs().log();

  {  // Valid: the session runs, and the certificate is kept with the device.
    TlsClient c(port, as_device("SN1"));
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_TRUE(session(c, "SN1"));
  }
  ASSERT_TRUE(wait_for_row(s, "SELECT count(*) FROM device_certificates WHERE device_id = $1",
                           device_id("SN1")));
  const std::string token = s.token("ops", "read");
  const auto dev = s.call(token, "GET", "/devices/" + test::url_escape(device_id("SN1")));
  ASSERT_EQ(dev.status, 200) << dev.body;
  const auto cert = dev.json()["client_certificate"];
  ASSERT_TRUE(cert.is_object()) << dev.body;
  EXPECT_NE(cert.value("subject", "").find("CN=SN1"), std::string::npos) << cert.dump();
  EXPECT_NE(cert.value("issuer", "").find("CN=luacs dev CA"), std::string::npos) << cert.dump();
  EXPECT_EQ(cert.value("sha256", "").size(), 64u) << cert.dump();
  EXPECT_FALSE(cert.value("not_after", "").empty()) << cert.dump();

  std::string body;
  // SN2's certificate on device SN3.
  EXPECT_EQ(inform_status(port, as_device("SN2"), "SN3", &body), 403);
  EXPECT_NE(body.find("names another device"), std::string::npos) << body;
  // Expired, revoked, issued by a CA luacs does not know, none at all.
  EXPECT_EQ(inform_status(port, as_device("SNX"), "SNX", &body), 403);
  EXPECT_NE(body.find("expired"), std::string::npos) << body;
  EXPECT_EQ(inform_status(port, as_device("SNR"), "SNR", &body), 403);
  EXPECT_NE(body.find("revoked"), std::string::npos) << body;
  EXPECT_EQ(inform_status(port, as_device("SN1", "two"), "SN1"), 403);
  EXPECT_EQ(inform_status(port, as_device(""), "SN9", &body), 403);
  EXPECT_NE(body.find("no client certificate"), std::string::npos) << body;

  EXPECT_EQ(refused(s, "wrong_device"), "1");
  EXPECT_EQ(refused(s, "invalid"), "3");
  EXPECT_EQ(refused(s, "missing"), "1");
  EXPECT_EQ(refused(s, "policy"), "0");
  // Each refusal is logged with its reason, and nothing of them was stored.
  EXPECT_EQ(s.luacs().count("tls client certificate refused"), 5u) << s.luacs().log();
  EXPECT_EQ(s.luacs().count("device=E48D8C-hAP%20lite-SN3 subject=\"CN=SN2"), 1u)
      << s.luacs().log();
  EXPECT_EQ(s.pg().value("SELECT count(*) FROM devices WHERE id <> $1", {device_id("SN1")}), "0");

  // The plain HTTP listener asks for no certificate.
  CpeClient plain(s.cwmp_port());
  EXPECT_EQ(plain.post(inform_xml("PLAIN")).status, 200);
  EXPECT_EQ(plain.post("").status, 204);
}

// A later message of a session must come with the certificate it began with.
TEST(Mtls, ASessionKeepsItsCertificate) {
  ApiServer s("mtls_keep", "", cwmp_ini("required"));
  ASSERT_TRUE(s.started()) << s.luacs().log();
  const uint16_t port = tls_port(s);
  TlsClient a(port, as_device("SN1"));
  ASSERT_TRUE(a.connected()) << a.error();
  ASSERT_EQ(a.post(inform_xml("SN1")).status, 200);
  TlsClient b(port, as_device("SN2"));
  ASSERT_TRUE(b.connected()) << b.error();
  b.cookie = a.cookie;
  const HttpResponse r = b.post("");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("another certificate than the session's"), std::string::npos) << r.body;
  TlsClient c(port, as_device("SN1"));
  ASSERT_TRUE(c.connected()) << c.error();
  c.cookie = a.cookie;
  EXPECT_EQ(c.post("").status, 204);
}

// Optional certificates, and a policy that decides instead of the rule: a
// replaced board keeps its predecessor's certificate.
TEST(Mtls, OptionalAndThePolicyDecides) {
  const fs::path policy = test::DevCas::dir() / "policy-authorize";
  fs::create_directories(policy);
  std::ofstream(policy / "policy.lua") << R"lua(
function authorize(dev, cert)
  if dev.serial == "SN3" and cert.common_name == "SN2" then return true end
  return cert.bound, "not this device's certificate (" .. cert.common_name .. ")"
end
)lua";
  ApiServer s("mtls_policy", "[policy]\ndir = " + policy.string() + "\n", cwmp_ini("optional"));
  ASSERT_TRUE(s.started()) << s.luacs().log();
  const uint16_t port = tls_port(s);
  {
    TlsClient none(port, as_device(""));
    ASSERT_TRUE(none.connected()) << none.error();
    EXPECT_TRUE(session(none, "SN7")) << "optional: no certificate is fine";
  }
  {
    TlsClient own(port, as_device("SN1"));
    ASSERT_TRUE(own.connected()) << own.error();
    EXPECT_TRUE(session(own, "SN1"));
  }
  {
    TlsClient replaced(port, as_device("SN2"));
    ASSERT_TRUE(replaced.connected()) << replaced.error();
    EXPECT_TRUE(session(replaced, "SN3")) << "the policy let it in";
  }
  std::string body;
  EXPECT_EQ(inform_status(port, as_device("SN2"), "SN4", &body), 403);
  EXPECT_NE(body.find("not this device's certificate (SN2)"), std::string::npos) << body;
  // A certificate that does not verify is refused even when optional.
  EXPECT_EQ(inform_status(port, as_device("SNX"), "SNX"), 403);
  EXPECT_EQ(refused(s, "policy"), "1");
  EXPECT_EQ(refused(s, "invalid"), "1");
  EXPECT_EQ(refused(s, "wrong_device"), "0");
}

// [auth] certificate_alone: a bound certificate is the login; without one
// a CPE uses Digest, or Basic inside TLS ([auth] allow_basic = tls) and
// never on plain HTTP.
TEST(Mtls, CertificateAloneDigestAndBasicInsideTls) {
  ApiServer s("mtls_alone",
              "[auth]\nmode = digest\nusername = cpe\npassword = s3cret\nallow_basic = tls\n"
              "certificate_alone = true\n",
              cwmp_ini("optional"));
  ASSERT_TRUE(s.started()) << s.luacs().log();
  const uint16_t port = tls_port(s);
  {
    TlsClient c(port, as_device("SN1"));
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_TRUE(session(c, "SN1")) << "no Authorization header needed";
  }
  // Certificate alone still names the device.
  EXPECT_EQ(inform_status(port, as_device("SN2"), "SN1"), 403);
  const std::string basic = "Authorization: Basic Y3BlOnMzY3JldA==";  // cpe:s3cret
  {
    TlsClient c(port, as_device(""));
    ASSERT_TRUE(c.connected()) << c.error();
    HttpResponse r = c.post(inform_xml("SN5"));
    EXPECT_EQ(r.status, 401);
    EXPECT_TRUE(session(c, "SN5", {basic}));
  }
  CpeClient plain(s.cwmp_port());
  const HttpResponse r = plain.post(inform_xml("SN6"), {basic});
  EXPECT_EQ(r.status, 401);
  for (auto [it, end] = r.headers.equal_range("www-authenticate"); it != end; ++it)
    EXPECT_EQ(it->second.rfind("Digest ", 0), 0u) << it->second;
}
