// UDP connection requests (TR-111 Part 2) end to end: the real binary with
// its built-in STUN server and PostgreSQL, simulated CPEs on 127.0.0.1 that
// keep a STUN binding (or report UDPConnectionRequestAddress), check the
// signed datagram with UdpRequestVerifier and, once woken, open a CWMP
// session with `6 CONNECTION REQUEST`.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "core/connreq/stun.h"
#include "core/connreq/udp_request.h"
#include "support/api_fixture.h"
#include "support/cpe_client.h"
#include "support/cwmp_messages.h"
#include "support/http_client.h"

using namespace luacs;
using namespace std::chrono_literals;
using connreq::UdpRequestVerifier;
using nlohmann::json;
using test::ApiServer;

namespace {

// 127.0.0.1 only may be woken: 127.0.0.2 stands for a denied address.
const std::string kIni =
    "[stun]\nlisten = 127.0.0.1:0\n"
    "[connection_request]\nallow = 127.0.0.1/32\ndeny =\nusername = acs\npassword = secret\n";

std::string device_id(const std::string& serial) {
  return "E48D8C-hAP%20lite-" + serial;
}

std::string wake_path(const std::string& serial) {
  return "/devices/" + test::url_escape(device_id(serial)) + "/connection_request?timeout=5000";
}

// The STUN server's port, from its log line.
uint16_t stun_port(ApiServer& api) {
  const std::string mark = "STUN server (UDP) on 127.0.0.1:";
  const std::string log = api.luacs().log();
  const auto at = log.find(mark);
  return at == std::string::npos ? 0
                                 : static_cast<uint16_t>(std::stoi(log.substr(at + mark.size())));
}

// A CPE's UDP socket: its STUN client and its connection-request listener.
class Udp {
 public:
  explicit Udp(const char* ip = "127.0.0.1") : ip_(ip) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a.sin_addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Udp() { ::close(fd_); }
  std::string address() const { return ip_ + ":" + std::to_string(port_); }

  void send_to(uint16_t port, const std::string& bytes) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ASSERT_EQ(
        ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a),
        static_cast<ssize_t>(bytes.size()));
  }
  std::optional<std::string> receive(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return std::nullopt;
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }
  // A Binding Request to the STUN server; its answer.
  std::optional<connreq::stun::Message> bind(uint16_t stun,
                                             const connreq::stun::RequestOptions& o) {
    const auto t = connreq::stun::random_transaction();
    send_to(stun, connreq::stun::binding_request(t, o));
    for (;;) {  // connection requests may arrive in between
      const auto answer = receive(2s);
      if (!answer) return std::nullopt;
      auto p = connreq::stun::parse(*answer);
      if (p.message && p.message->transaction == t) return p.message;
    }
  }

 private:
  std::string ip_;
  int fd_ = -1;
  uint16_t port_ = 0;
};

connreq::stun::RequestOptions binding(const std::string& username, bool change = false) {
  connreq::stun::RequestOptions o;
  o.username = username;
  o.connection_request_binding = true;
  o.binding_change = change;
  return o;
}

// A CWMP session; SetParameterValues are accepted.
void session(uint16_t cwmp_port, const std::string& serial, const std::string& event,
             const std::vector<soap::ParameterValue>& params = {}) {
  test::CpeClient c(cwmp_port);
  auto r = c.post(test::inform_xml(serial, "E48D8C", "hAP lite", {{event, ""}}, params));
  ASSERT_EQ(r.status, 200) << r.body;
  r = c.post("");
  while (r.status == 200) {
    const soap::Envelope req = test::parse_ok(r.body);
    ASSERT_NE(std::get_if<soap::SetParameterValues>(&req.body), nullptr) << r.body;
    r = c.post(test::message_xml(soap::SetParameterValuesResponse{0}, req.header.id.value_or("")));
  }
  EXPECT_EQ(r.status, 204);
}

std::vector<soap::ParameterValue> nat_params(const std::string& stun_username,
                                             const std::string& udp_address) {
  std::vector<soap::ParameterValue> p = {
      {"Device.ManagementServer.NATDetected", "1", "xsd:boolean"},
      // Unreachable: a request that went by HTTP would fail.
      {"Device.ManagementServer.ConnectionRequestURL", "http://127.0.0.1:1/cr", "xsd:string"}};
  if (!stun_username.empty())
    p.push_back({"Device.ManagementServer.STUNUsername", stun_username, "xsd:string"});
  if (!udp_address.empty())
    p.push_back({"Device.ManagementServer.UDPConnectionRequestAddress", udp_address, "xsd:string"});
  return p;
}

// The device informs with `params`; back once the store has them.
void inform(ApiServer& api, const std::string& serial,
            const std::vector<soap::ParameterValue>& params) {
  session(api.cwmp_port(), serial, "1 BOOT", params);
  for (int i = 0; i < 250; ++i) {
    if (api.pg().value("SELECT count(*) FROM devices WHERE id = $1 AND parameters ?"
                       " 'Device.ManagementServer.NATDetected'",
                       {device_id(serial)}) == "1")
      return;
    std::this_thread::sleep_for(20ms);
  }
  ADD_FAILURE() << "the Inform of " << serial << " was not stored";
}

// The CPE's side of a wake: the first datagram on `udp` within 5 s must be
// a request signed for acs/secret; then the session. The verdict.
std::future<UdpRequestVerifier::Verdict> woken(ApiServer& api, Udp& udp,
                                               UdpRequestVerifier& verifier,
                                               const std::string& serial) {
  return std::async(std::launch::async, [&api, &udp, &verifier, serial] {
    for (;;) {
      const auto d = udp.receive(5s);
      if (!d) return UdpRequestVerifier::Verdict::kMalformed;
      const auto v = verifier.check(*d);
      if (v == UdpRequestVerifier::Verdict::kReplayed) continue;  // a retransmission
      if (v == UdpRequestVerifier::Verdict::kAccepted)
        session(api.cwmp_port(), serial, "6 CONNECTION REQUEST");
      return v;
    }
  });
}

class ConnreqUdp : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.started()) << api_.luacs().log();
    stun_ = stun_port(api_);
    ASSERT_NE(stun_, 0) << api_.luacs().log();
    op_ = api_.token("oss", "operate");
  }

  ApiServer api_{"crudp", kIni};
  uint16_t stun_ = 0;
  std::string op_;
};

TEST_F(ConnreqUdp, StunBindingWakesTheDeviceAndFollowsABindingChange) {
  Udp first;
  UdpRequestVerifier verifier("acs", "secret");
  const auto answer = first.bind(stun_, binding("stun-A1"));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->cls, connreq::stun::Class::kSuccess);
  inform(api_, "A1", nat_params("stun-A1", ""));

  auto cpe = woken(api_, first, verifier, "A1");
  const auto r = api_.call(op_, "POST", wake_path("A1"));
  EXPECT_EQ(cpe.get(), UdpRequestVerifier::Verdict::kAccepted);
  ASSERT_EQ(r.status, 200) << r.body << api_.luacs().log();
  EXPECT_EQ(r.json().value("transport", ""), "udp");
  EXPECT_EQ(r.json().value("outcome", ""), "informed");
  EXPECT_EQ(verifier.last()->host, "127.0.0.1");
  EXPECT_EQ(verifier.last()->port, std::stoi(first.address().substr(10)));

  // The outcome is written once the last retransmission left, the latency
  // with the Inform: both behind the answer.
  json a;
  for (int i = 0; i < 150; ++i) {
    const auto listed = api_.call(
        op_, "GET", "/devices/" + test::url_escape(device_id("A1")) + "/connection_requests");
    ASSERT_EQ(listed.status, 200) << listed.body;
    a = listed.json().at("connection_requests");
    ASSERT_LE(a.size(), 1u) << listed.body;  // written a few ms behind (connreq/journal.h)
    if (a.size() == 1 && !a[0].at("outcome").is_null() && !a[0].at("latency_ms").is_null()) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].at("transport"), "udp") << a.dump();
  EXPECT_EQ(a[0].at("outcome"), "sent") << a.dump();
  EXPECT_TRUE(a[0].at("latency_ms").is_number()) << a.dump();

  // The NAT gave the CPE a new port: it says so from the new socket, and
  // the next request goes there.
  Udp second;
  ASSERT_TRUE(second.bind(stun_, binding("stun-A1", true)));
  auto again = woken(api_, second, verifier, "A1");
  const auto r2 = api_.call(op_, "POST", wake_path("A1"));
  EXPECT_EQ(again.get(), UdpRequestVerifier::Verdict::kAccepted);
  ASSERT_EQ(r2.status, 200) << r2.body;
  EXPECT_EQ(r2.json().value("transport", ""), "udp");
  EXPECT_EQ(verifier.last()->port, std::stoi(second.address().substr(10)));

  const auto m = api_.call("", "GET", "/metrics");
  EXPECT_NE(m.body.find(R"(luacs_connection_requests_total{outcome="sent",transport="udp"} 2)"),
            std::string::npos)
      << m.body;
}

TEST_F(ConnreqUdp, UdpConnectionRequestAddressAloneIsUsed) {
  Udp cpe;  // never talks STUN
  UdpRequestVerifier verifier("acs", "secret");
  inform(api_, "C1", nat_params("", cpe.address()));
  auto woke = woken(api_, cpe, verifier, "C1");
  const auto r = api_.call(op_, "POST", wake_path("C1"));
  EXPECT_EQ(woke.get(), UdpRequestVerifier::Verdict::kAccepted);
  ASSERT_EQ(r.status, 200) << r.body << api_.luacs().log();
  EXPECT_EQ(r.json().value("transport", ""), "udp");

  // The Inform settled the request: its retransmissions stop, and a wake
  // right after (well inside the 5 s replay window) is a new request.
  auto next = woken(api_, cpe, verifier, "C1");
  const auto r2 = api_.call(op_, "POST", wake_path("C1"));
  EXPECT_EQ(next.get(), UdpRequestVerifier::Verdict::kAccepted);
  ASSERT_EQ(r2.status, 200) << r2.body;
  int late = 0;  // datagrams after the second session: retransmissions
  while (cpe.receive(2000ms)) ++late;
  EXPECT_EQ(late, 0);
}

TEST_F(ConnreqUdp, ADeniedTargetGetsNothing) {
  {  // the reported address
    Udp cpe("127.0.0.2");
    inform(api_, "D1", nat_params("", cpe.address()));
    const auto r = api_.call(op_, "POST", wake_path("D1"));
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(r.json().value("error", ""), "denied target") << r.body;
    EXPECT_EQ(r.json().value("transport", ""), "udp");
    EXPECT_FALSE(cpe.receive(700ms));
  }
  {  // a STUN binding
    Udp cpe("127.0.0.2");
    ASSERT_TRUE(cpe.bind(stun_, binding("stun-D2")));
    inform(api_, "D2", nat_params("stun-D2", ""));
    const auto r = api_.call(op_, "POST", wake_path("D2"));
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_EQ(r.json().value("error", ""), "denied target") << r.body;
    EXPECT_FALSE(cpe.receive(700ms));
  }
  EXPECT_EQ(api_.pg().value("SELECT string_agg(outcome, ',') FROM connection_requests"),
            "denied,denied");
}

TEST_F(ConnreqUdp, WithStunCredentialsAWrongIntegrityLearnsNothing) {
  // luacs sets the device's STUN credentials; the CPE accepts them.
  const json task = {{"name", "SetParameterValues"},
                     {"args",
                      {{"values",
                        {{"Device.ManagementServer.STUNUsername", "stun-E1"},
                         {"Device.ManagementServer.STUNPassword", "stun-pw"}}}}}};
  inform(api_, "E1", nat_params("stun-E1", ""));
  const auto queued = api_.call(
      op_, "POST", "/devices/" + test::url_escape(device_id("E1")) + "/tasks", task.dump());
  ASSERT_EQ(queued.status, 202) << queued.body;
  // The task reaches the sessions through the store: a session may start
  // before it is there.
  std::string state;
  for (int i = 0; i < 50 && state != "done"; ++i) {
    session(api_.cwmp_port(), "E1", "2 PERIODIC", nat_params("stun-E1", ""));
    std::this_thread::sleep_for(50ms);
    state = api_.pg().value("SELECT state FROM tasks WHERE device_id = $1", {device_id("E1")});
  }
  ASSERT_EQ(state, "done");

  // Once luacs knows the password its answers carry MESSAGE-INTEGRITY.
  Udp good;
  auto signed_binding = binding("stun-E1");
  signed_binding.key = "stun-pw";
  bool integrity = false;
  for (int i = 0; i < 100 && !integrity; ++i) {
    const auto m = good.bind(stun_, signed_binding);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->cls, connreq::stun::Class::kSuccess);
    integrity = m->has_integrity;
    if (!integrity) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(integrity) << "luacs never checked the STUN credentials: "
                         << api_.pg().value("SELECT count(*) FROM connection_request_credentials")
                         << api_.pg().value(
                                "SELECT string_agg(name || ' ' || state, ',') FROM tasks")
                         << api_.luacs().log();

  // Someone else claims the binding with the wrong password: refused.
  Udp bad;
  auto forged = binding("stun-E1", true);
  forged.key = "guessed";
  const auto refused = bad.bind(stun_, forged);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->cls, connreq::stun::Class::kError);

  UdpRequestVerifier verifier("acs", "secret");
  auto woke = woken(api_, good, verifier, "E1");
  const auto r = api_.call(op_, "POST", wake_path("E1"));
  EXPECT_EQ(woke.get(), UdpRequestVerifier::Verdict::kAccepted);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().value("transport", ""), "udp");
  EXPECT_FALSE(bad.receive(300ms));
  EXPECT_EQ(api_.pg().value("SELECT stun_username || ' ' || stun_password"
                            " FROM connection_request_credentials WHERE device_id = $1",
                            {device_id("E1")}),
            "stun-E1 stun-pw");
}

}  // namespace

// Garbage at the STUN port is dropped and counted by reason in /metrics,
// beside the answers and bindings.
TEST_F(ConnreqUdp, BadStunDatagramsAreDroppedAndCounted) {
  Udp cpe;
  cpe.send_to(stun_, "short");                  // under the 20-byte header
  cpe.send_to(stun_, std::string(3000, 'x'));   // larger than any STUN message luacs takes
  ASSERT_TRUE(cpe.bind(stun_, binding("m1")));  // a good one is still answered
  EXPECT_FALSE(cpe.receive(200ms));             // and the garbage got nothing
  const auto m = api_.call("", "GET", "/metrics");
  ASSERT_EQ(m.status, 200) << m.body;
  for (const char* line : {R"(luacs_stun_dropped_total{reason="truncated"} 1)",
                           R"(luacs_stun_dropped_total{reason="oversized"} 1)",
                           "luacs_stun_binding_responses_total 1", "luacs_stun_bindings 1"})
    EXPECT_NE(m.body.find(line), std::string::npos) << line << "\n" << m.body;
}

// A device luacs has in memory is checked against a tag-scoped token from
// there (no PostgreSQL read): outside the scope it is 403 and not woken.
TEST_F(ConnreqUdp, AScopedTokenWakesOnlyItsDevicesFromTheCache) {
  Udp cpe;
  inform(api_, "S1", nat_params("", cpe.address()));
  const std::string scoped = api_.token("reseller", "operate", "isp-a");
  const auto r = api_.call(scoped, "POST", wake_path("S1"));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_FALSE(cpe.receive(500ms));  // nothing was sent
}
