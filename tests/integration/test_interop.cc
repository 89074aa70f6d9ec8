// What third-party CPE agents do that luacs must take (docs/interop.md).
// Each test replays one client's behaviour, as seen on the wire, against an
// in-process luacs over real loopback sockets.
#include <expat.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/auth/digest.h"
#include "core/server/server.h"
#include "core/util/log.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/test_server.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::CpeClient;
using test::HttpResponse;
using test::inform_xml;
using test::parse_ok;
using test::TestServer;

namespace {

// The C agent's parser: it wraps the body it received in an element of its
// own and parses that as one document, so an XML declaration in the body
// lands mid-document and the parse fails ("XML or text declaration not at
// start of entity").
std::string parse_as_the_c_agent_does(const std::string& body) {
  const std::string doc = "<cwmp>" + body + "</cwmp>";
  XML_Parser p = XML_ParserCreate(nullptr);
  std::string err;
  if (XML_Parse(p, doc.data(), static_cast<int>(doc.size()), 1) != XML_STATUS_OK)
    err = XML_ErrorString(XML_GetErrorCode(p));
  XML_ParserFree(p);
  return err;
}

// The C agent's request head, byte for byte (its Informs carry no XML
// declaration either).
std::string agent_post(uint16_t port, const std::string& body, const std::string& cookie = "",
                       const std::string& authorization = "") {
  std::string req = "POST / HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nUser-Agent: cwmp-agent\r\nContent-Type: text/xml; charset=utf-8\r\n"
                    "Connection: keep-alive\r\n";
  if (!cookie.empty()) req += "Cookie: " + cookie + "\r\n";
  if (!authorization.empty()) req += "Authorization: " + authorization + "\r\n";
  req += "SOAPAction: \r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return req;
}

std::string field(const std::string& challenge, const std::string& key) {
  auto p = challenge.find(key + "=\"");
  if (p == std::string::npos) return {};
  p += key.size() + 2;
  return challenge.substr(p, challenge.find('"', p) - p);
}

// A Digest answer (qop=auth) to a challenge's realm and `nonce`.
std::string digest(const std::string& realm, const std::string& nonce, const std::string& nc,
                   const std::string& password = "s3cret") {
  const std::string cnonce = "6b8b4567";
  const std::string ha1 = auth::md5_hex("cpe:" + realm + ":" + password);
  const std::string ha2 = auth::md5_hex("POST:/");
  const std::string resp =
      auth::md5_hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2);
  return "Digest username=\"cpe\", realm=\"" + realm + "\", nonce=\"" + nonce +
         "\", uri=\"/\", response=\"" + resp + "\", qop=auth, nc=" + nc + ", cnonce=\"" + cnonce +
         "\"";
}

config::Config digest_config() {
  auto cfg = test::test_config(2);
  cfg.auth_mode = config::AuthMode::kDigest;
  cfg.credentials = {{"cpe", "s3cret", ""}};
  cfg.log_level = "info";  // the session lines say how each CPE got in
  return cfg;
}

// Sends the log to a file of the test's own; its text.
class LogFile {
 public:
  LogFile() {
    path_ = (std::filesystem::temp_directory_path() /
             ("luacs-interop-" + std::to_string(getpid()) + ".log"))
                .string();
    std::filesystem::remove(path_);
    log::set_file(path_);
  }
  ~LogFile() {
    log::set_file("");
    std::filesystem::remove(path_);
  }
  std::string text() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  size_t count(const std::string& needle) const {
    const std::string t = text();
    size_t n = 0;
    for (auto p = t.find(needle); p != std::string::npos; p = t.find(needle, p + 1)) ++n;
    return n;
  }

 private:
  std::string path_;
};

}  // namespace

// Defect 1: every reply of a whole session -- InformResponse, an ACS
// request, the answer to a CPE request, a SOAP fault -- parses inside the
// agent's wrapper element.
TEST(Interop, RepliesParseInsideTheAgentsWrapperElement) {
  TestServer srv(test::test_config(1), test::policy_reading_uptime(1));
  CpeClient c(srv.port());
  ASSERT_TRUE(c.send_raw(agent_post(srv.port(), inform_xml("WRAP"))));
  HttpResponse r = c.read_response();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.rfind("<soap-env:Envelope", 0), 0u) << "no XML declaration: " << r.body;
  EXPECT_EQ(parse_as_the_c_agent_does(r.body), "") << r.body;
  const std::string cookie = r.header("set-cookie").substr(0, r.header("set-cookie").find(';'));

  // A CPE request: GetRPCMethods, answered with its response.
  ASSERT_TRUE(
      c.send_raw(agent_post(srv.port(), test::message_xml(soap::GetRPCMethods{}, "g1"), cookie)));
  r = c.read_response();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(std::holds_alternative<soap::GetRPCMethodsResponse>(parse_ok(r.body).body));
  EXPECT_EQ(parse_as_the_c_agent_does(r.body), "") << r.body;

  // A TransferComplete, acknowledged.
  soap::TransferComplete tc;
  tc.command_key = "fw1";
  tc.start_time = "2026-11-21T10:00:00Z";
  tc.complete_time = "2026-11-21T10:01:00Z";
  ASSERT_TRUE(c.send_raw(agent_post(srv.port(), test::message_xml(tc, "t1"), cookie)));
  r = c.read_response();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(std::holds_alternative<soap::TransferCompleteResponse>(parse_ok(r.body).body));
  EXPECT_EQ(parse_as_the_c_agent_does(r.body), "") << r.body;

  // The ACS's turn: its request.
  ASSERT_TRUE(c.send_raw(agent_post(srv.port(), "", cookie)));
  r = c.read_response();
  ASSERT_EQ(r.status, 200) << r.body;
  soap::Envelope req = parse_ok(r.body);
  ASSERT_TRUE(std::holds_alternative<soap::GetParameterValues>(req.body));
  EXPECT_EQ(parse_as_the_c_agent_does(r.body), "") << r.body;
  ASSERT_TRUE(c.send_raw(agent_post(
      srv.port(),
      test::message_xml(
          soap::GetParameterValuesResponse{{{"Device.DeviceInfo.UpTime", "7", "xsd:unsignedInt"}}},
          *req.header.id),
      cookie)));
  EXPECT_EQ(c.read_response().status, 204);
  EXPECT_EQ(srv.stats().sessions_completed.load(), 1u);

  // A SOAP fault: a CPE request of a method the ACS does not know.
  CpeClient f(srv.port());
  ASSERT_TRUE(f.send_raw(agent_post(srv.port(), inform_xml("WRAP2"))));
  r = f.read_response();
  ASSERT_EQ(r.status, 200);
  const std::string cookie2 = r.header("set-cookie").substr(0, r.header("set-cookie").find(';'));
  const std::string unknown =
      "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap-env:Header><cwmp:ID "
      "soap-env:mustUnderstand=\"1\">u1</cwmp:ID></soap-env:Header><soap-env:Body>"
      "<cwmp:X_VENDOR_Hello/></soap-env:Body></soap-env:Envelope>";
  ASSERT_TRUE(f.send_raw(agent_post(srv.port(), unknown, cookie2)));
  r = f.read_response();
  ASSERT_EQ(r.status, 500) << r.body;
  EXPECT_TRUE(std::holds_alternative<soap::Fault>(parse_ok(r.body).body)) << r.body;
  EXPECT_EQ(parse_as_the_c_agent_does(r.body), "") << r.body;
}

// Defect 2: a CPE whose connection closed mid-session (it crashed, rebooted,
// or could not parse our answer) comes straight back with a new Inform on a
// new connection and no cookie: it is served at once, and the session it
// left is logged as aborted. Twenty times, so that the new connection lands
// on the other worker too.
TEST(Interop, ACpeThatWentAwayIsServedAtOnce) {
  TestServer srv(test::test_config(2), test::policy_reading_uptime(1));
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE(i);
    {
      CpeClient gone(srv.port());
      HttpResponse r = gone.post(inform_xml("GONE"));
      ASSERT_EQ(r.status, 200) << r.body;
      if (i % 2) {
        // Half the time it leaves after the ACS's request instead.
        r = gone.post("");
        ASSERT_EQ(r.status, 200) << r.body;
      }
    }  // closed here, without a word
    CpeClient back(srv.port());
    back.echo_cookie = false;
    const auto sent = std::chrono::steady_clock::now();
    HttpResponse r = back.post(inform_xml("GONE"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_LT(std::chrono::steady_clock::now() - sent, 1s);
    EXPECT_TRUE(std::holds_alternative<soap::InformResponse>(parse_ok(r.body).body));
    back.echo_cookie = true;
    r = back.post("");
    ASSERT_EQ(r.status, 200);
    soap::Envelope req = parse_ok(r.body);
    EXPECT_EQ(
        back.post(test::message_xml(soap::GetParameterValuesResponse{}, *req.header.id)).status,
        204);
  }
  EXPECT_EQ(srv.stats().sessions_completed.load(), 20u);
  EXPECT_EQ(srv.stats().sessions_failed.load(), 20u);
  EXPECT_EQ(srv.stats().rejected_busy.load(), 0u);
}

// The same CPE back on a new connection with the cookie of the session it
// left: an Inform begins a new session all the same.
TEST(Interop, AnInformWithAnOldCookieBeginsANewSession) {
  TestServer srv(test::test_config(1));
  std::string old_cookie;
  {
    CpeClient gone(srv.port());
    ASSERT_EQ(gone.post(inform_xml("COOKIE")).status, 200);
    old_cookie = gone.cookie;
  }
  CpeClient back(srv.port());
  back.cookie = old_cookie;
  HttpResponse r = back.post(inform_xml("COOKIE"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(back.cookie, old_cookie) << "a new session has a new cookie";
  EXPECT_EQ(back.post("").status, 204);
  EXPECT_EQ(srv.stats().sessions_failed.load(), 1u);
  EXPECT_EQ(srv.stats().sessions_completed.load(), 1u);
}

// A true concurrent session -- the first CPE is still connected -- keeps
// the 503.
TEST(Interop, AConcurrentSessionOnALiveConnectionIsStillRefused) {
  TestServer srv(test::test_config(2));
  CpeClient first(srv.port());
  ASSERT_EQ(first.post(inform_xml("LIVE")).status, 200);
  for (int i = 0; i < 6; ++i) {
    CpeClient second(srv.port());
    HttpResponse r = second.post(inform_xml("LIVE"));
    EXPECT_EQ(r.status, 503);
    EXPECT_FALSE(r.header("retry-after").empty());
  }
  EXPECT_EQ(first.post("").status, 204);
}

// Defect 3: the agent starts each session with the nonce of the last one
// and nc=00000001. It gets a challenge with stale=true, is not counted as a
// failed login, and is never cut off; the log says how it got in and has
// no warning.
TEST(Interop, ANonceReusedFromTheLastSessionIsStaleNotAFailure) {
  LogFile log;
  TestServer srv(digest_config());
  std::string realm, nonce;
  {
    CpeClient c(srv.port());
    HttpResponse r = c.post(inform_xml("NONCE"));
    ASSERT_EQ(r.status, 401);
    realm = field(r.header("www-authenticate"), "realm");
    nonce = field(r.header("www-authenticate"), "nonce");
    ASSERT_EQ(
        c.post(inform_xml("NONCE"), {"Authorization: " + digest(realm, nonce, "00000001")}).status,
        200);
    EXPECT_EQ(c.post("").status, 204);
  }
  for (int session = 0; session < 5; ++session) {
    SCOPED_TRACE(session);
    CpeClient c(srv.port());
    HttpResponse r =
        c.post(inform_xml("NONCE"), {"Authorization: " + digest(realm, nonce, "00000001")});
    ASSERT_EQ(r.status, 401);
    const std::string challenge = r.header("www-authenticate");
    EXPECT_NE(challenge.find("stale=true"), std::string::npos) << challenge;
    EXPECT_FALSE(r.closes());
    nonce = field(challenge, "nonce");
    EXPECT_LE(nonce.size(), 32u) << "some CPEs cut the nonce at 32 characters";
    r = c.post(inform_xml("NONCE"), {"Authorization: " + digest(realm, nonce, "00000001")});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(c.post("").status, 204);
  }
  EXPECT_EQ(srv.stats().auth_failures.load(), 0u);
  EXPECT_EQ(srv.stats().sessions_completed.load(), 6u);
  srv.server().stop();
  EXPECT_EQ(log.count("auth=challenge>digest"), 1u) << log.text();
  EXPECT_EQ(log.count("auth=stale>digest"), 5u) << log.text();
  EXPECT_EQ(log.count("WARN"), 0u) << log.text();
}

// A CPE that tries Basic first while Basic is off gets the Digest
// challenge; neither that nor a second Basic try counts as a failure.
// A wrong password still does, and is the only thing logged as a warning.
TEST(Interop, BasicFirstIsAnsweredWithTheDigestChallenge) {
  LogFile log;
  TestServer srv(digest_config());
  const std::string basic = "Basic Y3BlOnMzY3JldA==";  // cpe:s3cret
  CpeClient c(srv.port());
  HttpResponse r = c.post(inform_xml("BASIC"), {"Authorization: " + basic});
  ASSERT_EQ(r.status, 401);
  EXPECT_FALSE(r.closes());
  r = c.post(inform_xml("BASIC"), {"Authorization: " + basic});
  ASSERT_EQ(r.status, 401);
  EXPECT_FALSE(r.closes()) << "two Basic tries are not two failures";
  const std::string challenge = r.header("www-authenticate");
  ASSERT_EQ(challenge.rfind("Digest ", 0), 0u) << challenge;
  r = c.post(inform_xml("BASIC"),
             {"Authorization: " +
              digest(field(challenge, "realm"), field(challenge, "nonce"), "00000001")});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(c.post("").status, 204);
  EXPECT_EQ(srv.stats().auth_failures.load(), 0u);

  CpeClient wrong(srv.port());
  r = wrong.post(inform_xml("WRONG"));
  ASSERT_EQ(r.status, 401);
  const std::string ch = r.header("www-authenticate");
  r = wrong.post(
      inform_xml("WRONG"),
      {"Authorization: " + digest(field(ch, "realm"), field(ch, "nonce"), "00000001", "guess")});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(srv.stats().auth_failures.load(), 1u);
  srv.server().stop();
  EXPECT_EQ(log.count("auth=basic-off>basic-off>digest"), 1u) << log.text();
  EXPECT_EQ(log.count("WARN"), 1u) << log.text();
  EXPECT_EQ(log.count("reason=\"wrong password\""), 1u) << log.text();
}

// Defect 4: a second server on an address the first already listens on
// stops with the address named, instead of splitting the CPEs with it.
TEST(Interop, ASecondServerOnTheSamePortRefusesToStart) {
  TestServer first(test::test_config(2));
  auto cfg = test::test_config(2);
  cfg.listen = {{"127.0.0.1", first.port(), false}};
  server::Server second(cfg);
  const std::string where = "127.0.0.1:" + std::to_string(first.port());
  try {
    second.start();
    FAIL() << "a second server started on " << where;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on " + where), std::string::npos)
        << e.what();
  }
  // The first still serves every CPE.
  for (int i = 0; i < 8; ++i) {
    CpeClient c(first.port());
    ASSERT_EQ(c.post(inform_xml("ONE" + std::to_string(i))).status, 200);
    EXPECT_EQ(c.post("").status, 204);
  }
  EXPECT_EQ(first.stats().sessions_completed.load(), 8u);
}
