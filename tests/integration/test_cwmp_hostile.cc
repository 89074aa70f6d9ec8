// Hostile clients against a real server on loopback (issue 15): sessions
// bound to their address, caps on what a session and its abandoned remains
// may hold, per-address session limits, back-pressure on replies nobody
// reads, and a compressed body parsed in slices.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <thread>

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

// Polls `pred` for up to `wait`.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds wait = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// The answer to the ACS's GetParameterValues in `r`.
std::string uptime_answer(const HttpResponse& r) {
  soap::Envelope req = parse_ok(r.body);
  EXPECT_TRUE(std::holds_alternative<soap::GetParameterValues>(req.body)) << r.body;
  soap::GetParameterValuesResponse resp;
  resp.parameters = {{"Device.DeviceInfo.UpTime", "42", "unsignedInt"}};
  return test::message_xml(resp, req.header.id.value_or(""));
}

// A CPE request the ACS does not know, with a method name of `n` bytes.
std::string unknown_request(size_t n, int id) {
  const std::string name = "X" + std::string(n - 1, 'm');
  return "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" "
         "xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap:Header><cwmp:ID "
         "soap:mustUnderstand=\"1\">r" +
         std::to_string(id) + "</cwmp:ID></soap:Header><soap:Body><cwmp:" + name +
         "/></soap:Body></soap:Envelope>";
}

std::string post_bytes(const std::string& body, const std::string& cookie,
                       const std::string& extra = {}) {
  return "POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\nCookie: " + cookie + "\r\n" +
         extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string gzip(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
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

// The cookie of a live session, shown from another address, neither
// continues nor ends it -- whatever it carries -- and an Inform for another
// device with it starts that device's own session.
TEST(CwmpHostile, AForeignCookieNeitherContinuesNorEndsASession) {
  TestServer srv(test::test_config(2), test::policy_reading_uptime(2));
  CpeClient a(srv.port());
  ASSERT_EQ(a.post(inform_xml("VICTIM")).status, 200);
  HttpResponse r = a.post("");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string answer = uptime_answer(r);

  for (const std::string& body :
       {answer, std::string("<not xml"), test::message_xml(soap::TransferComplete{}, "t1")}) {
    CpeClient x(srv.port(), "127.0.0.2");
    ASSERT_TRUE(x.connected());
    x.cookie = a.cookie;
    HttpResponse f = x.post(body);
    EXPECT_EQ(f.status, 403) << f.body;
    EXPECT_TRUE(f.closes());
  }
  EXPECT_EQ(srv.stats().foreign_cookies.load(), 3u);
  {
    CpeClient x(srv.port(), "127.0.0.2");
    x.cookie = a.cookie;
    EXPECT_EQ(x.post(inform_xml("INTRUDER")).status, 200);  // its own session
  }
  // The victim's session goes on, on its own connection.
  r = a.post(answer);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(a.post(uptime_answer(r)).status, 204);
  EXPECT_GE(srv.stats().sessions_completed.load(), 1u);
}

// From the session's own address a new connection continues it (a CPE that
// reconnects mid-session); with session_same_address off, any address may.
TEST(CwmpHostile, ANewConnectionContinuesFromTheSameAddressOrWhenAllowed) {
  for (bool same_address : {true, false}) {
    auto cfg = test::test_config(2);
    cfg.session_same_address = same_address;
    TestServer srv(cfg, test::policy_reading_uptime(1));
    std::string cookie;
    {
      CpeClient a(srv.port());
      ASSERT_EQ(a.post(inform_xml("MOVER")).status, 200);
      cookie = a.cookie;
    }
    CpeClient b(srv.port(), same_address ? "127.0.0.1" : "127.0.0.3");
    b.cookie = cookie;
    HttpResponse r = b.post("");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(b.post(uptime_answer(r)).status, 204);
    EXPECT_EQ(srv.stats().foreign_cookies.load(), 0u);
  }
}

// Credentials that name a device continue only that device's session, even
// from the session's own address.
TEST(CwmpHostile, CredentialsOfAnotherDeviceDoNotContinueASession) {
  auto cfg = test::test_config(2);
  cfg.auth_mode = config::AuthMode::kDigest;
  cfg.credentials = {{"a", "pa", "E48D8C-hAP%20lite-DEVA"}, {"b", "pb", "E48D8C-hAP%20lite-DEVB"}};
  TestServer srv(cfg, test::policy_reading_uptime(1));
  CpeClient a(srv.port());
  ASSERT_EQ(test::post_with_digest(a, inform_xml("DEVA"), "a", "pa").status, 200);
  CpeClient b(srv.port());
  b.cookie = a.cookie;
  HttpResponse r = test::post_with_digest(b, "", "b", "pb");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(srv.stats().foreign_cookies.load(), 1u);
  r = a.post("");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(a.post(uptime_answer(r)).status, 204);
}

// A CPE that resets its connection mid-session and comes back is served at
// once: its device id is not locked out until idle_timeout.
TEST(CwmpHostile, AResetMidSessionDoesNotLockTheDeviceOut) {
  TestServer srv(test::test_config(2), test::policy_reading_uptime(1));
  for (int i = 0; i < 3; ++i) {
    CpeClient a(srv.port());
    ASSERT_EQ(a.post(inform_xml("RESETTER")).status, 200);
    a.reset();  // RST, no FIN
  }
  CpeClient b(srv.port());
  HttpResponse r = b.post(inform_xml("RESETTER"));
  ASSERT_EQ(r.status, 200) << r.body;
  r = b.post("");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(b.post(uptime_answer(r)).status, 204);
}

TEST(CwmpHostile, SessionsPerAddressAreLimitedWhenAsked) {
  auto cfg = test::test_config(2);
  cfg.sessions_per_address = 2;
  TestServer srv(cfg);
  CpeClient a(srv.port()), b(srv.port()), c(srv.port()), d(srv.port(), "127.0.0.4");
  ASSERT_EQ(a.post(inform_xml("ADDR1")).status, 200);
  ASSERT_EQ(b.post(inform_xml("ADDR2")).status, 200);
  HttpResponse r = c.post(inform_xml("ADDR3"));
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("Too many sessions from this address"), std::string::npos) << r.body;
  EXPECT_FALSE(r.header("retry-after").empty());
  EXPECT_EQ(d.post(inform_xml("ADDR4")).status, 200);  // another address
  EXPECT_EQ(a.post("").status, 204);
  CpeClient e(srv.port());
  EXPECT_EQ(e.post(inform_xml("ADDR3")).status, 200);  // a place is free again
}

// The requests of one session together may not pass max_session_bytes:
// the one that does gets a 413 and the session ends.
TEST(CwmpHostile, ASessionPastItsByteCapEndsWith413) {
  auto cfg = test::test_config(1);
  cfg.max_session_bytes = 16 << 10;
  TestServer srv(cfg, test::policy_reading_uptime(50));
  CpeClient a(srv.port());
  ASSERT_EQ(a.post(inform_xml("BIG")).status, 200);
  HttpResponse r = a.post("");
  int answered = 0;
  while (r.status == 200 && answered < 50) {
    std::string answer = uptime_answer(r) + std::string(3000, ' ');
    r = a.post(answer);
    ++answered;
  }
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find("max_session_bytes"), std::string::npos) << r.body;
  EXPECT_TRUE(r.closes());
  EXPECT_GE(answered, 3);
  EXPECT_LE(answered, 6);
  EXPECT_EQ(srv.stats().sessions_over_bytes.load(), 1u);
  EXPECT_TRUE(eventually([&] { return srv.stats().sessions_live.load() == 0; }));
}

// Sessions whose CPE went away keep what they read only up to
// max_abandoned_bytes per worker; the largest are ended past it.
TEST(CwmpHostile, AbandonedSessionsHoldBoundedMemory) {
  auto cfg = test::test_config(1);
  cfg.max_abandoned_bytes = 64 << 10;
  TestServer srv(cfg, test::policy_reading_uptime(1));
  std::vector<soap::ParameterValue> padding;
  for (int i = 0; i < 100; ++i)
    padding.push_back({"Device.X_Pad." + std::to_string(i), std::string(200, 'p'), "string"});
  for (int i = 0; i < 6; ++i) {
    CpeClient c(srv.port());
    ASSERT_EQ(c.post(inform_xml("GONE" + std::to_string(i), "E48D8C", "hAP lite", {{"1 BOOT", ""}},
                                padding))
                  .status,
              200);
  }  // each closed with its session still waiting for the CPE
  ASSERT_TRUE(eventually([&] { return srv.stats().abandoned_ended.load() >= 3; }));
  EXPECT_LE(srv.stats().abandoned_bytes.load(), 64 << 10);
  EXPECT_GT(srv.stats().abandoned_bytes.load(), 0);
  const auto ended = static_cast<int64_t>(srv.stats().abandoned_ended.load());
  EXPECT_EQ(srv.stats().sessions_live.load(), 6 - ended);  // the others wait for their CPE
}

// A client that sends requests and reads no reply: the server stops reading
// it while its replies pile up, and answers every request once it reads.
TEST(CwmpHostile, RepliesNobodyReadsStopTheReading) {
  auto cfg = test::test_config(1);
  cfg.reply_high_water = 16 << 10;
  cfg.cpe_requests_per_session = 10'000;
  TestServer srv(cfg);
  CpeClient a(srv.port());
  ASSERT_EQ(a.post(inform_xml("NOREAD")).status, 200);

  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(srv.port());
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  // Unknown methods: each fault echoes (the start of) the name. More replies
  // than loopback's socket buffers hold.
  constexpr int kRequests = 9'000;
  std::string all;
  for (int i = 0; i < kRequests; ++i) all += post_bytes(unknown_request(100, i), a.cookie);
  std::atomic<bool> sent{false};
  std::thread writer([&] {
    std::string_view rest = all;
    while (!rest.empty()) {
      ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      rest.remove_prefix(static_cast<size_t>(n));
    }
    sent = true;
  });
  struct Join {
    std::thread& t;
    int fd;
    ~Join() {
      ::shutdown(fd, SHUT_RDWR);
      if (t.joinable()) t.join();
    }
  } join{writer, fd};
  EXPECT_TRUE(eventually([&] { return srv.stats().reads_paused.load() > 0; }));
  // Now read everything: every request is answered, in order.
  std::string in, first;
  char buf[65536];
  int answered = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (answered < kRequests && std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) in.append(buf, static_cast<size_t>(n));
    if (first.empty() && in.size() > 2048) first = in.substr(0, 2048);
    if (n <= 0) std::this_thread::sleep_for(1ms);
    size_t at;
    while ((at = in.find("Method not supported: Xmmm")) != std::string::npos) {
      in.erase(0, at + 10);
      ++answered;
    }
  }
  writer.join();
  EXPECT_TRUE(sent.load());
  EXPECT_EQ(answered, kRequests) << srv.stats().requests.load() << " paused "
                                 << srv.stats().reads_paused.load() << " tail "
                                 << in.substr(in.size() > 600 ? in.size() - 600 : 0);
  // The echoed name is cut short: a reply does not grow with it.
  EXPECT_NE(first.find("Method not supported: X" + std::string(63, 'm') + "...<"),
            std::string::npos)
      << first;
  ::close(fd);
}

// A small compressed body that inflates to megabytes is parsed in slices,
// and parsed right.
TEST(CwmpHostile, ALargeCompressedInformIsParsedInSlices) {
  TestServer srv(test::test_config(1));
  std::string inform = inform_xml("ZIPPED") + std::string(6 << 20, ' ');
  const std::string z = gzip(inform);
  ASSERT_LT(z.size(), 64u << 10);
  CpeClient a(srv.port());
  HttpResponse r = a.post(z, {"Content-Encoding: gzip"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(std::holds_alternative<soap::InformResponse>(parse_ok(r.body).body));
  EXPECT_EQ(a.post("").status, 204);
}
