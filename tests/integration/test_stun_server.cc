// The STUN server in-process on 127.0.0.1, talked to from plain UDP
// sockets that play the CPE (no PostgreSQL, no luacs binary).
#include "core/connreq/stun_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <future>
#include <map>
#include <string>
#include <thread>

#include "core/connreq/udp_request.h"

namespace luacs::connreq {
namespace {

using std::chrono::milliseconds;

// A UDP socket on 127.0.0.1 (a CPE's STUN client).
class Udp {
 public:
  Udp() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Udp() { ::close(fd_); }
  uint16_t port() const { return port_; }
  stun::Address address() const {
    stun::Address a;
    a.family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", a.ip.data());
    a.port = port_;
    return a;
  }

  void send_to(uint16_t port, const std::string& bytes) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ASSERT_EQ(
        ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a),
        static_cast<ssize_t>(bytes.size()));
  }
  // The next datagram, or nullopt after `wait`.
  std::optional<std::string> receive(milliseconds wait = milliseconds{2000}) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return std::nullopt;
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

class StunServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StunServerOptions o;
    o.listen = {{"127.0.0.1", 0, false}};
    o.send_schedule = {milliseconds{0}, milliseconds{100}, milliseconds{300}};
    o.replay_window = milliseconds{60'000};
    server_ =
        std::make_unique<StunServer>(o, [](const std::string& user) -> std::optional<std::string> {
          if (user == "cpe-secure") return "stun-secret";
          return std::nullopt;
        });
    server_->start();
    port_ = server_->ports().at(0);
    ASSERT_NE(port_, 0);
  }

  // Sends a request from `udp`, returns the parsed answer.
  std::optional<stun::Message> exchange(Udp& udp, const stun::RequestOptions& o,
                                        const stun::TransactionId& t) {
    udp.send_to(port_, stun::binding_request(t, o));
    const auto answer = udp.receive();
    if (!answer) return std::nullopt;
    auto p = stun::parse(*answer);
    EXPECT_TRUE(p.message) << stun::to_string(p.error);
    if (p.message) {
      EXPECT_EQ(p.message->transaction, t);
    }
    return p.message;
  }

  std::unique_ptr<StunServer> server_;
  uint16_t port_ = 0;
};

TEST_F(StunServerTest, AnswersWithoutUsernameAndLearnsNothing) {
  Udp cpe;
  const auto t = stun::random_transaction();
  const auto m = exchange(cpe, {}, t);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cls, stun::Class::kSuccess);
  EXPECT_EQ(m->xor_mapped, cpe.address());
  EXPECT_EQ(m->mapped, cpe.address());
  EXPECT_FALSE(m->has_integrity);
  EXPECT_TRUE(m->has_fingerprint);
  EXPECT_EQ(server_->binding_count(), 0u);
  EXPECT_EQ(server_->answered(), 1u);
}

TEST_F(StunServerTest, LearnsAndUpdatesTheBinding) {
  Udp first;
  stun::RequestOptions o;
  o.username = "cpe-open";
  o.connection_request_binding = true;
  const auto m = exchange(first, o, stun::random_transaction());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cls, stun::Class::kSuccess);
  auto b = server_->binding("cpe-open");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->address, first.address());
  EXPECT_TRUE(b->connection_request_binding);
  EXPECT_FALSE(b->binding_change);
  EXPECT_FALSE(b->authenticated);

  // The NAT gave the CPE a new port: it says so with BINDING-CHANGE.
  Udp second;
  o.binding_change = true;
  const auto m2 = exchange(second, o, stun::random_transaction());
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->xor_mapped, second.address());
  b = server_->binding("cpe-open");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->address, second.address());
  EXPECT_NE(b->address.port, first.port());
  EXPECT_TRUE(b->binding_change);
  EXPECT_EQ(server_->binding_count(), 1u);
}

TEST_F(StunServerTest, IntegrityCheckedWhenTheDeviceHasCredentials) {
  Udp cpe;
  stun::RequestOptions o;
  o.username = "cpe-secure";
  o.key = "wrong-secret";
  auto m = exchange(cpe, o, stun::random_transaction());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cls, stun::Class::kError);
  EXPECT_EQ(m->error_code, 401);
  EXPECT_FALSE(server_->binding("cpe-secure"));

  o.key.reset();  // no MESSAGE-INTEGRITY at all: refused too
  m = exchange(cpe, o, stun::random_transaction());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->error_code, 401);
  EXPECT_FALSE(server_->binding("cpe-secure"));
  EXPECT_EQ(server_->dropped("unauthorized"), 2u);

  stun::RequestOptions anonymous;  // MESSAGE-INTEGRITY without USERNAME: 400
  anonymous.key = "stun-secret";
  m = exchange(cpe, anonymous, stun::random_transaction());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->error_code, 400);
  EXPECT_EQ(server_->dropped("bad_request"), 1u);

  o.key = "stun-secret";
  m = exchange(cpe, o, stun::random_transaction());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cls, stun::Class::kSuccess);
  EXPECT_TRUE(stun::integrity_ok(*m, "stun-secret"));  // the answer is signed too
  const auto b = server_->binding("cpe-secure");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->authenticated);
  EXPECT_EQ(b->address, cpe.address());
}

TEST_F(StunServerTest, BadPacketsGetNoAnswerAndAreCounted) {
  Udp cpe;
  stun::RequestOptions o;
  o.username = "cpe-open";
  const std::string good = stun::binding_request(stun::random_transaction(), o);
  std::string bad_cookie = good;
  bad_cookie[5] ^= 1;
  std::string bad_fp = good;
  bad_fp.back() ^= 1;
  const std::string response =
      stun::binding_success(stun::random_transaction(), cpe.address(), std::nullopt);
  const std::map<std::string, std::string> packets = {
      {"truncated", good.substr(0, 12)},
      {"oversized", std::string(1200, '\0')},
      {"not_stun", "GET / HTTP/1.1\r\n\r\n garbage garbage"},
      {"bad_cookie", bad_cookie},
      {"bad_fingerprint", bad_fp},
      {"not_request", response},
  };
  for (const auto& [reason, bytes] : packets) cpe.send_to(port_, bytes);
  EXPECT_FALSE(cpe.receive(milliseconds{300}));
  for (const auto& [reason, bytes] : packets) EXPECT_EQ(server_->dropped(reason), 1u) << reason;
  EXPECT_EQ(server_->binding_count(), 0u);
  EXPECT_EQ(server_->answered(), 0u);
  // Still serving.
  EXPECT_TRUE(exchange(cpe, o, stun::random_transaction()));
}

std::future<SendResult> request(StunServer& s, const std::string& target, UdpRequestCredentials c) {
  auto p = std::make_shared<std::promise<SendResult>>();
  auto f = p->get_future();
  s.send_connection_request(target, std::move(c), [p](SendResult r) { p->set_value(r); });
  return f;
}

TEST_F(StunServerTest, SignedConnectionRequestToTheLearnedBinding) {
  Udp cpe;
  stun::RequestOptions o;
  o.username = "cpe-open";
  o.connection_request_binding = true;
  ASSERT_TRUE(exchange(cpe, o, stun::random_transaction()));

  auto done = request(*server_, "cpe-open", {"cpe-cr-user", "cr-secret"});
  UdpRequestVerifier verifier("cpe-cr-user", "cr-secret");
  std::string id;
  for (int i = 0; i < 3; ++i) {
    const auto d = cpe.receive();
    ASSERT_TRUE(d) << "datagram " << i;
    const auto r = parse_udp_request(*d);
    ASSERT_TRUE(r) << *d;
    if (i == 0) id = r->id;
    EXPECT_EQ(r->id, id);
    EXPECT_EQ(r->host, "127.0.0.1");
    EXPECT_EQ(r->port, cpe.port());
    EXPECT_EQ(verifier.check(*d), i == 0 ? UdpRequestVerifier::Verdict::kAccepted
                                         : UdpRequestVerifier::Verdict::kReplayed);
  }
  EXPECT_FALSE(cpe.receive(milliseconds{500}));  // three, no more
  ASSERT_EQ(done.wait_for(std::chrono::seconds{5}), std::future_status::ready);
  EXPECT_EQ(done.get(), SendResult::kSent);
  EXPECT_EQ(server_->datagrams_sent(), 3u);

  // Within the replay window: merged, nothing sent.
  EXPECT_EQ(request(*server_, "cpe-open", {"cpe-cr-user", "cr-secret"}).get(), SendResult::kMerged);
  EXPECT_FALSE(cpe.receive(milliseconds{300}));
  EXPECT_EQ(server_->datagrams_sent(), 3u);
}

TEST_F(StunServerTest, ConcurrentRequestForTheSameTargetIsMerged) {
  Udp cpe;
  const std::string target = "127.0.0.1:" + std::to_string(cpe.port());
  auto first = request(*server_, target, {"u", "p"});
  auto second = request(*server_, target, {"u", "p"});
  EXPECT_EQ(second.get(), SendResult::kMerged);
  EXPECT_EQ(first.get(), SendResult::kSent);
  int received = 0;
  while (cpe.receive(milliseconds{300})) ++received;
  EXPECT_EQ(received, 3);
}

TEST_F(StunServerTest, UnknownTargetsRefused) {
  EXPECT_EQ(request(*server_, "nobody", {"u", "p"}).get(), SendResult::kNoBinding);
  EXPECT_EQ(request(*server_, "[::1]:4000", {"u", "p"}).get(), SendResult::kBadTarget);
  server_->stop();
  EXPECT_EQ(request(*server_, "127.0.0.1:4000", {"u", "p"}).get(), SendResult::kStopped);
}

// A server of its own: a short replay window, room for two bindings.
TEST(StunServerLimits, ReplayWindowEndsAndOldestBindingGoes) {
  StunServerOptions o;
  o.listen = {{"127.0.0.1", 0, false}};
  o.send_schedule = {milliseconds{0}};
  o.replay_window = milliseconds{200};
  o.max_bindings = 2;
  StunServer server(o, {});
  server.start();
  const uint16_t port = server.ports().at(0);

  Udp a, b, c;
  for (auto [udp, name] : {std::pair{&a, "a"}, std::pair{&b, "b"}, std::pair{&c, "c"}}) {
    stun::RequestOptions r;
    r.username = name;
    udp->send_to(port, stun::binding_request(stun::random_transaction(), r));
    ASSERT_TRUE(udp->receive());
  }
  EXPECT_EQ(server.binding_count(), 2u);
  EXPECT_FALSE(server.binding("a"));  // the least recently seen
  EXPECT_TRUE(server.binding("b"));
  EXPECT_TRUE(server.binding("c"));

  EXPECT_EQ(request(server, "c", {"u", "p"}).get(), SendResult::kSent);
  EXPECT_TRUE(c.receive());
  EXPECT_EQ(request(server, "c", {"u", "p"}).get(), SendResult::kMerged);
  std::this_thread::sleep_for(milliseconds{300});  // past the window
  EXPECT_EQ(request(server, "c", {"u", "p"}).get(), SendResult::kSent);
  EXPECT_TRUE(c.receive());
  EXPECT_EQ(server.datagrams_sent(), 2u);
}

// The address check right before sending (the service's [connection_request]
// rules): a binding at a refused address gets nothing.
TEST(StunServerLimits, RefusedAddressGetsNothing) {
  StunServerOptions o;
  o.listen = {{"127.0.0.1", 0, false}};
  o.send_schedule = {milliseconds{0}};
  Udp cpe;
  const uint16_t refused_port = cpe.port();
  o.refuse = [refused_port](const sockaddr* sa) -> std::optional<std::string> {
    const auto a = stun::address_of(sa);
    if (a && a->port == refused_port) return "denied";
    return std::nullopt;
  };
  StunServer server(o, {});
  server.start();
  stun::RequestOptions r;
  r.username = "cpe";
  cpe.send_to(server.ports().at(0), stun::binding_request(stun::random_transaction(), r));
  ASSERT_TRUE(cpe.receive());
  EXPECT_EQ(request(server, "cpe", {"u", "p"}).get(), SendResult::kDenied);
  EXPECT_EQ(request(server, "127.0.0.1:" + std::to_string(refused_port), {"u", "p"}).get(),
            SendResult::kDenied);
  EXPECT_FALSE(cpe.receive(milliseconds{300}));
  EXPECT_EQ(server.datagrams_sent(), 0u);
  Udp other;  // allowed
  EXPECT_EQ(request(server, "127.0.0.1:" + std::to_string(other.port()), {"u", "p"}).get(),
            SendResult::kSent);
  EXPECT_TRUE(other.receive());
}

}  // namespace
}  // namespace luacs::connreq
