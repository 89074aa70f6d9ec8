// CWMP sessions over real loopback sockets against an in-process luacs.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <zlib.h>

#include <atomic>
#include <thread>

#include "core/auth/digest.h"
#include "core/soap/reader.h"
#include "core/soap/writer.h"
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

// One complete Inform / empty POST / 204 session on `c`.
void plain_session(CpeClient& c, const std::string& inform) {
  HttpResponse r = c.post(inform);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(std::holds_alternative<soap::InformResponse>(parse_ok(r.body).body));
  EXPECT_NE(r.header("set-cookie").find("session="), std::string::npos);
  r = c.post("");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.header("content-length"), "0");
}

std::string compress(const std::string& in, int window_bits) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

TEST(CwmpHttp, EveryCorpusDialectCompletesASession) {
  TestServer srv;
  int sessions = 0;
  for (const auto& name : test::corpus_files("inform-", ".xml")) {
    SCOPED_TRACE(name);
    std::string body = test::corpus_file(name);
    soap::Envelope in = parse_ok(body);
    const auto& id = std::get<soap::Inform>(in.body).device_id;
    CpeClient c(srv.port());
    HttpResponse r = c.post(body);
    if (id.oui.empty() || id.serial_number.empty()) {
      EXPECT_EQ(r.status, 500);
      continue;
    }
    ASSERT_EQ(r.status, 200) << r.body;
    soap::Envelope out = parse_ok(r.body);
    EXPECT_TRUE(std::holds_alternative<soap::InformResponse>(out.body));
    EXPECT_EQ(out.cwmp_ns, in.cwmp_ns);
    EXPECT_EQ(out.header.id.value_or(""), in.header.id.value_or(""));
    EXPECT_EQ(r.header("content-type"), "text/xml; charset=\"utf-8\"");
    r = c.post("");
    EXPECT_EQ(r.status, 204);
    ++sessions;
  }
  EXPECT_GE(sessions, 15);
  EXPECT_EQ(srv.stats().sessions_completed.load(), static_cast<uint64_t>(sessions));
}

TEST(CwmpHttp, RawCorpusRequestsThroughTheHttpLayer) {
  TestServer srv;
  // Thomson ST706: ISO-8859-1 charset, empty SOAPAction, LF-only headers and a
  // trailing extra LF after the body.
  {
    CpeClient c(srv.port());
    ASSERT_TRUE(
        c.send_raw(test::corpus_file("inform-tr098-thomson-st706-periodic-nomorerequests.http")));
    HttpResponse r = c.read_response();
    ASSERT_EQ(r.status, 200) << r.body;
    auto ir = parse_ok(r.body);
    EXPECT_TRUE(std::holds_alternative<soap::InformResponse>(ir.body));
    EXPECT_EQ(c.post("").status, 204);
  }
  // Thomson ST780: chunked, chunk boundaries in the middle of tags.
  {
    CpeClient c(srv.port());
    ASSERT_TRUE(c.send_raw(test::corpus_file("inform-tr098-thomson-st780-periodic-chunked.http")));
    HttpResponse r = c.read_response();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(parse_ok(r.body).header.id, "14_THOM_TR69_ID");
    EXPECT_EQ(c.post("").status, 204);
  }
}

TEST(CwmpHttp, KeepAliveCarriesSeveralSessions) {
  TestServer srv;
  CpeClient c(srv.port());
  for (int i = 0; i < 3; ++i) {
    c.cookie.clear();
    plain_session(c, inform_xml("KA" + std::to_string(i)));
  }
  EXPECT_EQ(srv.stats().connections_accepted.load(), 1u);
  EXPECT_EQ(srv.stats().sessions_completed.load(), 3u);
}

TEST(CwmpHttp, EmptyPostForms) {
  TestServer srv;
  const std::string forms[] = {
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n{cookie}\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\n{cookie}\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n{cookie}\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n{cookie}\r\n \r\n\t",
  };
  int i = 0;
  for (std::string form : forms) {
    SCOPED_TRACE(i);
    CpeClient c(srv.port());
    ASSERT_EQ(c.post(inform_xml("EP" + std::to_string(i++))).status, 200);
    form.replace(form.find("{cookie}"), 8, "Cookie: " + c.cookie + "\r\n");
    ASSERT_TRUE(c.send_raw(form));
    EXPECT_EQ(c.read_response().status, 204);
  }
}

TEST(CwmpHttp, ChunkedGzipAndDeflateBodies) {
  TestServer srv;
  std::string xml = inform_xml("ZIP1");
  {
    CpeClient c(srv.port());
    std::string gz = compress(xml, 15 + 16);
    EXPECT_EQ(c.post(gz, {"Content-Encoding: gzip"}).status, 200);
    EXPECT_EQ(c.post("").status, 204);
  }
  {
    CpeClient c(srv.port());
    std::string z = compress(inform_xml("ZIP2"), 15);
    EXPECT_EQ(c.post(z, {"Content-Encoding: deflate"}).status, 200);
    EXPECT_EQ(c.post("").status, 204);
  }
  {
    CpeClient c(srv.port());
    std::string body = inform_xml("CHUNK1");
    std::string req = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t off = 0; off < body.size(); off += 7) {
      std::string piece = body.substr(off, 7);
      char size[16];
      snprintf(size, sizeof size, "%zx\r\n", piece.size());
      req += size + piece + "\r\n";
    }
    req += "0\r\n\r\n";
    ASSERT_TRUE(c.send_raw(req));
    EXPECT_EQ(c.read_response().status, 200);
    EXPECT_EQ(c.post("").status, 204);
  }
  {
    CpeClient c(srv.port());
    HttpResponse r = c.post("abc", {"Content-Encoding: br"});
    EXPECT_EQ(r.status, 415);
  }
}

TEST(CwmpHttp, RpcsFlowAndNoCookieCpeKeepsItsSessionOnTheConnection) {
  TestServer srv(test::test_config(2), test::policy_reading_uptime(3));
  CpeClient c(srv.port());
  c.echo_cookie = false;  // some CPEs never send the cookie back
  ASSERT_EQ(c.post(inform_xml("NOCOOKIE")).status, 200);
  HttpResponse r = c.post("");
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(r.status, 200) << r.body;
    soap::Envelope req = parse_ok(r.body);
    ASSERT_TRUE(std::holds_alternative<soap::GetParameterValues>(req.body));
    soap::GetParameterValuesResponse resp;
    resp.parameters = {{"Device.DeviceInfo.UpTime", std::to_string(i), "unsignedInt"}};
    r = c.post(test::message_xml(resp, *req.header.id));
  }
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(srv.stats().sessions_completed.load(), 1u);
}

TEST(CwmpHttp, ReconnectWithCookieLandsOnAnotherWorker) {
  TestServer srv(test::test_config(2), test::policy_reading_uptime(24));
  std::string cookie;
  {
    CpeClient c(srv.port());
    ASSERT_EQ(c.post(inform_xml("ROAMER")).status, 200);
    cookie = c.cookie;
  }
  // Each step on a fresh connection: SO_REUSEPORT spreads them over both
  // workers, so some land away from the session's owner and are handed over.
  std::string body;  // empty POST first
  int steps = 0;
  for (;;) {
    CpeClient c(srv.port());
    c.cookie = cookie;
    HttpResponse r = c.post(body);
    if (r.status == 204) break;
    ASSERT_EQ(r.status, 200) << r.body;
    soap::Envelope req = parse_ok(r.body);
    ASSERT_TRUE(std::holds_alternative<soap::GetParameterValues>(req.body));
    body = test::message_xml(soap::GetParameterValuesResponse{}, *req.header.id);
    ASSERT_LT(++steps, 30);
  }
  EXPECT_EQ(steps, 24);
  EXPECT_GT(srv.stats().handovers.load(), 0u);
  EXPECT_EQ(srv.stats().sessions_completed.load(), 1u);
}

TEST(CwmpHttp, OneLiveSessionPerDevice) {
  TestServer srv;
  CpeClient a(srv.port()), b(srv.port());
  ASSERT_EQ(a.post(inform_xml("TWICE")).status, 200);
  HttpResponse r = b.post(inform_xml("TWICE"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("retry-after"), "60");
  EXPECT_EQ(a.post("").status, 204);
  CpeClient c(srv.port());
  plain_session(c, inform_xml("TWICE"));  // free again once the first ended
}

TEST(CwmpHttp, SessionLimitGives503) {
  auto cfg = test::test_config(1);
  cfg.max_sessions = 2;
  TestServer srv(cfg);
  CpeClient a(srv.port()), b(srv.port()), c(srv.port());
  ASSERT_EQ(a.post(inform_xml("L1")).status, 200);
  ASSERT_EQ(b.post(inform_xml("L2")).status, 200);
  HttpResponse r = c.post(inform_xml("L3"));
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(r.header("retry-after").empty());
  EXPECT_TRUE(r.closes());
  // Sessions in flight still complete.
  EXPECT_EQ(a.post("").status, 204);
  EXPECT_EQ(b.post("").status, 204);
}

// Stalls its worker's loop for a while on the ACS turn of device
// "...-STALL": what a saturated worker looks like from outside.
constexpr const char* kStaller = R"(
function on_inform(dev)
  if dev.id:sub(-6) == "-STALL" then
    local t = os.clock()
    while os.clock() - t < 0.15 do end
  end
end
)";

TEST(CwmpHttp, ASaturatedWorkerShedsNewSessionsAndFinishesItsOwn) {
  auto cfg = test::test_config(1);
  cfg.max_queue_delay = 20ms;
  TestServer srv(cfg, kStaller);
  // 32 sessions in flight: below that a worker never sheds.
  std::vector<std::unique_ptr<CpeClient>> live;
  for (int i = 0; i < 32; ++i) {
    live.push_back(std::make_unique<CpeClient>(srv.port()));
    ASSERT_EQ(live.back()->post(inform_xml("LIVE" + std::to_string(i))).status, 200);
  }
  // A loaded test machine (sanitizers, tests in parallel) can itself make a
  // pulse late: then the worker sheds for a moment already. Wait that out,
  // so the refusal below is the stall's.
  std::unique_ptr<CpeClient> stall;
  for (int tries = 0;; ++tries) {
    stall = std::make_unique<CpeClient>(srv.port());
    const int status = stall->post(inform_xml("STALL")).status;
    if (status == 200) break;
    ASSERT_EQ(status, 503);
    ASSERT_LT(tries, 30) << "the worker never stopped shedding";
    std::this_thread::sleep_for(100ms);
  }
  const uint64_t refused_before = srv.server().stats().rejected_overload.load();
  // The policy stalls the worker for 150 ms when this session's ACS turn
  // comes; a CPE that arrives meanwhile is refused.
  std::thread t([&] { EXPECT_EQ(stall->post("").status, 204); });
  std::this_thread::sleep_for(50ms);
  CpeClient late(srv.port());
  HttpResponse r = late.post(inform_xml("LATE"));
  t.join();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("retry-after"), "60");
  EXPECT_NE(r.body.find("Overloaded"), std::string::npos) << r.body;
  EXPECT_EQ(srv.server().stats().rejected_overload.load(), refused_before + 1);

  // Sessions in flight complete, and once the worker keeps up again new
  // sessions are taken.
  for (auto& c : live) EXPECT_EQ(c->post("").status, 204);
  std::this_thread::sleep_for(150ms);  // past the shedding interval (10 pulses)
  CpeClient again(srv.port());
  plain_session(again, inform_xml("LATE"));
}

TEST(CwmpHttp, BadInputGetsAClearAnswerAndTheServerKeepsServing) {
  auto cfg = test::test_config(1);
  cfg.max_body_bytes = 64 * 1024;
  TestServer srv(cfg);
  {
    CpeClient c(srv.port());
    HttpResponse r = c.post(
        "<soap:Envelope "
        "xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body><Inform>");
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("line"), std::string::npos) << r.body;
  }
  {
    CpeClient c(srv.port());
    HttpResponse r = c.post(std::string(100 * 1024, 'x'));
    EXPECT_EQ(r.status, 413);
  }
  {
    CpeClient c(srv.port());
    HttpResponse r = c.post("<!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>");
    EXPECT_EQ(r.status, 400);
  }
  {
    CpeClient c(srv.port());
    ASSERT_TRUE(c.send_raw("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    HttpResponse r = c.read_response();
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.header("allow"), "POST");
  }
  {
    CpeClient c(srv.port());
    ASSERT_TRUE(c.send_raw("BLAH\r\n\r\n"));
    EXPECT_EQ(c.read_response().status, 400);
  }
  {
    CpeClient c(srv.port());
    HttpResponse r = c.post("");  // empty POST with no session
    EXPECT_EQ(r.status, 400);
  }
  {
    CpeClient c(srv.port());
    ASSERT_EQ(c.post(inform_xml("ORDER")).status, 200);
    HttpResponse r = c.post(inform_xml("ORDER"));  // Inform out of place
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("Bad session state"), std::string::npos);
  }
  CpeClient ok(srv.port());
  plain_session(ok, inform_xml("STILLOK"));
}

TEST(CwmpHttp, SlowLorisIsCutOffAndOthersAreServed) {
  auto cfg = test::test_config(1);
  cfg.header_timeout = 400ms;
  cfg.body_timeout = 400ms;
  TestServer srv(cfg);
  CpeClient slow(srv.port());
  ASSERT_TRUE(slow.send_raw("POST / HTTP/1.1\r\nHost: a\r\n"));
  auto start = std::chrono::steady_clock::now();
  // Trickle a header byte every 100 ms: the header deadline still trips.
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    for (int i = 0; i < 30 && !stop; ++i) {
      std::this_thread::sleep_for(100ms);
      if (!slow.send_raw("X")) break;
    }
  });
  CpeClient fine(srv.port());
  plain_session(fine, inform_xml("FAST"));
  bool closed = slow.closed_by_peer(5s);
  stop = true;
  trickle.join();
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);

  // A body that stops halfway is cut off too.
  CpeClient half(srv.port());
  ASSERT_TRUE(half.send_raw("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n<soap"));
  EXPECT_TRUE(half.closed_by_peer(5s));
}

TEST(CwmpHttp, DigestChallengeAndTwoFailuresClose) {
  auto cfg = test::test_config(2);
  cfg.auth_mode = config::AuthMode::kDigest;
  cfg.credentials = {{"cpe", "s3cret", ""}};
  TestServer srv(cfg);

  auto answer = [](const std::string& challenge, const std::string& user, const std::string& pass,
                   const std::string& nc) {
    auto field = [&](const std::string& k) {
      auto p = challenge.find(k + "=\"");
      if (p == std::string::npos) return std::string();
      p += k.size() + 2;
      return challenge.substr(p, challenge.find('"', p) - p);
    };
    std::string realm = field("realm"), nonce = field("nonce"), cnonce = "0a4f113b";
    std::string ha1 = auth::md5_hex(user + ":" + realm + ":" + pass);
    std::string ha2 = auth::md5_hex("POST:/");
    std::string resp = auth::md5_hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2);
    return "Authorization: Digest username=\"" + user + "\", realm=\"" + realm + "\", nonce=\"" +
           nonce + "\", uri=\"/\", qop=auth, nc=" + nc + ", cnonce=\"" + cnonce +
           "\", response=\"" + resp + "\", algorithm=MD5";
  };

  {
    CpeClient c(srv.port());
    HttpResponse r = c.post(inform_xml("AUTH1"));
    ASSERT_EQ(r.status, 401);
    std::string challenge = r.header("www-authenticate");
    ASSERT_EQ(challenge.rfind("Digest ", 0), 0u) << challenge;
    EXPECT_NE(challenge.find("qop=\"auth\""), std::string::npos);
    EXPECT_FALSE(r.closes());
    r = c.post(inform_xml("AUTH1"), {answer(challenge, "cpe", "s3cret", "00000001")});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(c.post("").status, 204);  // same connection: no new challenge
  }
  {
    CpeClient c(srv.port());
    HttpResponse r = c.post(inform_xml("AUTH2"));
    ASSERT_EQ(r.status, 401);
    r = c.post(inform_xml("AUTH2"),
               {answer(r.header("www-authenticate"), "cpe", "wrong", "00000001")});
    ASSERT_EQ(r.status, 401);
    EXPECT_FALSE(r.closes());
    r = c.post(inform_xml("AUTH2"),
               {answer(r.header("www-authenticate"), "cpe", "wrong", "00000001")});
    EXPECT_EQ(r.status, 401);
    EXPECT_TRUE(r.closes());
    EXPECT_TRUE(c.closed_by_peer(5s));
  }
  EXPECT_EQ(srv.stats().auth_failures.load(), 2u);
}

TEST(CwmpHttp, ReconnectMidSessionNeedsReauthentication) {
  auto cfg = test::test_config(2);
  cfg.auth_mode = config::AuthMode::kDigest;
  cfg.credentials = {{"cpe", "pw", ""}};
  TestServer srv(cfg, test::policy_reading_uptime(1));
  auto authorize = [](CpeClient& c, const std::string& body) {
    return test::post_with_digest(c, body, "cpe", "pw");
  };
  std::string cookie;
  {
    CpeClient c(srv.port());
    ASSERT_EQ(authorize(c, inform_xml("REAUTH")).status, 200);
    cookie = c.cookie;
  }
  CpeClient c(srv.port());
  c.cookie = cookie;
  HttpResponse r = c.post("");
  EXPECT_EQ(r.status, 401);  // a new connection must authenticate again
  r = authorize(c, "");
  ASSERT_EQ(r.status, 200) << r.body;  // ...and then continues the same session
  soap::Envelope req = parse_ok(r.body);
  ASSERT_TRUE(std::holds_alternative<soap::GetParameterValues>(req.body));
  EXPECT_EQ(c.post(test::message_xml(soap::GetParameterValuesResponse{}, *req.header.id)).status,
            204);
}

TEST(CwmpHttp, ThousandConcurrentSessions) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 4096) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 8192);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  ASSERT_GE(rl.rlim_cur, 2100u) << "need file descriptors for 1,000 clients and their server ends";

  // 1,000 Informs arrive at once: under a sanitizer on a busy machine the
  // loop may well run late, and this test is about holding 1,000 sessions,
  // not about shedding them (ASaturatedWorker... covers that).
  auto cfg = test::test_config();
  cfg.max_queue_delay = 0ms;
  TestServer srv(cfg);
  constexpr int kN = 1000;
  std::vector<std::unique_ptr<CpeClient>> cpes;
  for (int i = 0; i < kN; ++i) {
    cpes.push_back(std::make_unique<CpeClient>(srv.port(), 20s));
    ASSERT_TRUE(cpes.back()->connected()) << i;
  }
  // All Informs first, so all 1,000 sessions are live at once.
  for (int i = 0; i < kN; ++i) {
    std::string body = inform_xml("C" + std::to_string(i));
    ASSERT_TRUE(cpes[i]->send_raw("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " +
                                  std::to_string(body.size()) + "\r\n\r\n" + body));
  }
  for (int i = 0; i < kN; ++i) ASSERT_EQ(cpes[i]->read_response().status, 200) << i;
  EXPECT_EQ(srv.stats().sessions_live.load(), kN);
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(cpes[i]->send_raw("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nCookie: " +
                                  cpes[i]->cookie + "\r\n\r\n"));
  }
  for (int i = 0; i < kN; ++i) ASSERT_EQ(cpes[i]->read_response().status, 204) << i;
  EXPECT_EQ(srv.stats().sessions_completed.load(), static_cast<uint64_t>(kN));
  EXPECT_EQ(srv.stats().sessions_live.load(), 0);
}
